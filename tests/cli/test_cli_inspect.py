"""``zoblib inspect``: names, shapes, codecs, sizes and versions, without unpickling."""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import numpy as np
import zarr
from cli_helpers import SUFFIXES, Run

import zoblib


def test_table_names_every_array_and_the_writer(run: Run, archive: Path, container: str) -> None:
    result = run("inspect", archive)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"zoblib archive ({container}," in out
    assert f"written by zoblib {zoblib.__version__} (format 2)" in out
    assert f"numpy {np.__version__}" in out
    # the tree: a group line, then its members indented below it
    lines = out.splitlines()
    layers = lines.index(next(line for line in lines if line.startswith("layers/")))
    assert lines[layers + 1].startswith("  0/")
    assert lines[layers + 2].split()[0] == "W" and lines[layers + 2].startswith("    W")
    assert "800 x 500" in out and "float64" in out
    assert "5 stored arrays (1 alone, 4 in 2 packs); 1 inline in the skeleton" in out


def test_json_describes_arrays_packs_and_sizes(run: Run, archive: Path, container: str) -> None:
    result = run("inspect", "--json", archive)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["container"] == container
    assert info["format_version"] == 2 and info["zoblib_version"] == zoblib.__version__
    assert info["numpy_version"] == np.__version__ and info["zarr_version"] is None
    assert info["inline_arrays"] == 1
    by_name = {a["name"]: a for a in info["arrays"]}
    assert sorted(by_name) == ["layers/0/W", "layers/0/b", "layers/1/W", "layers/1/b", "weights"]
    weights = by_name["weights"]
    assert weights["packed"] is False and weights["shape"] == [800, 500] and weights["dtype"] == "float64"
    assert weights["nbytes"] == 3_200_000 and weights["node"] == "arrays/weights"
    assert weights["codec"]["id"] == ("zlib" if container == "hdf5" else "zstd")
    # arange compresses well: stored much smaller than logical, and the ratio says so
    assert 0 < weights["stored_nbytes"] < weights["nbytes"] / 4
    assert weights["ratio"] == round(weights["nbytes"] / weights["stored_nbytes"], 3)
    packed = by_name["layers/1/b"]
    assert packed["packed"] is True and packed["dtype"] == "int32" and packed["stored_nbytes"] is None
    packs = [n for n in info["nodes"] if n["kind"] == "pack"]
    assert sorted(m for p in packs for m in p["members"]) == [
        "layers/0/W",
        "layers/0/b",
        "layers/1/W",
        "layers/1/b",
    ]
    assert {n["kind"] for n in info["nodes"]} == {"array", "pack", "skeleton"}
    assert info["skeleton"]["nbytes"] > 0 and info["file_nbytes"] > 0
    # the nodes' stored bytes are what the container holds for their chunks
    assert sum(n["stored_nbytes"] for n in info["nodes"]) <= info["file_nbytes"]


def test_zarr_sizes_match_the_files(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "m.zarr"
    zoblib.dump({"x": np.arange(1_000_000)}, path, compress=3)
    info = json.loads(run("inspect", "--json", path).stdout)
    chunks = path / "arrays" / "x" / "c"
    on_disk = sum(f.stat().st_size for f in chunks.rglob("*") if f.is_file())
    (x,) = info["arrays"]
    assert x["stored_nbytes"] == on_disk
    # and what zarr itself reads there is the array inspect describes
    stored = zarr.open_array(store=str(path), path="arrays/x", mode="r")
    assert list(stored.shape) == x["shape"] and list(stored.chunks) == x["chunk_shape"]


class Trap:
    """Unpickling it would create a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_nothing_is_unpickled(run: Run, tmp_path: Path, container: str) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / f"trap{SUFFIXES[container]}"
    zoblib.dump({"trap": Trap(str(marker)), "x": np.ones(300_000)}, path)
    result = run("inspect", path)
    assert result.returncode == 0, result.stderr
    assert "x" in result.stdout
    assert not marker.exists()
    zoblib.load(path)  # the trap is real: loading springs it
    assert marker.exists()


def test_not_an_archive(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    result = run("inspect", path)
    assert result.returncode == 1
    assert "notes.txt" in result.stderr and "not a zoblib archive" in result.stderr
    assert result.stdout == ""


def test_damaged_root_record(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "m.zarr"
    zoblib.dump({"x": np.ones(300_000)}, path)
    root = path / "zarr.json"
    text = root.read_text()
    assert '"pickle_protocol":5' in text
    root.write_text(text.replace('"pickle_protocol":5', '"pickle_protocol":4', 1))
    result = run("inspect", path)
    assert result.returncode == 1
    assert "m.zarr" in result.stderr and "checksum" in result.stderr


def test_missing_file(run: Run) -> None:
    result = run("inspect", "nowhere.zob")
    assert result.returncode == 1 and "nowhere.zob" in result.stderr and "no such file" in result.stderr


def test_console_script(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "m.zob"
    zoblib.dump({"x": np.ones(300_000)}, path)
    result = run("inspect", "--json", path, script=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["arrays"][0]["name"] == "x"


GOLDEN = Path(__file__).resolve().parents[1] / "data"


def test_golden_archives_of_every_format_version(run: Run) -> None:
    """The archives each released format wrote (tests/data/make_golden_archives.py)."""
    for path in sorted([*GOLDEN.glob("v1/*"), *GOLDEN.glob("v2/*")]):
        if path.name.startswith("logical"):
            continue  # another object (the HDF5 layout's), checked below
        result = run("inspect", "--json", path)
        assert result.returncode == 0, (path, result.stderr)
        info = json.loads(result.stdout)
        assert info["format_version"] == int(path.parent.name[1:])
        names = [a["name"] for a in info["arrays"]]
        # own (alone), the Fortran big-endian one and the 300-float pack: the rest is inline.
        # Format 1 recorded no names: its arrays go by their reference numbers.
        expected = ["0", "1", "2"] if path.parent.name == "v1" else ["fortran_big_endian", "own", "packed/2"]
        assert names == expected, path
        # packed/0, packed/1 (under 1 KiB), datetimes, structured, masked's data and mask, inline
        assert info["inline_arrays"] == 7, path
        fortran = next(a for a in info["arrays"] if a["dtype"] == ">i4")
        assert fortran["dtype"] == ">i4" and fortran["order"] == "F" and fortran["shape"] == [50, 30]
