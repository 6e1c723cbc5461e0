"""The HDF5 container against damage, full disks and fresh processes (issue 10).

Loads of damaged files run in a subprocess, so that a crash inside libhdf5 fails the test
instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np
import pytest
from hdf5_first_layout import rewrite_in_first_layout

import zoblib
from zoblib.archive.containers.hdf5_chunks import fletcher32
from zoblib.archive.containers.staging import STAGING_MARK
from zoblib.archive.integrity import record_checksum

GOLDEN_V1 = Path(__file__).parents[1] / "data" / "v1" / "compressed.h5"
CODECS: list[Any] = [3, 9, ("zlib", 3), ("gzip", 4), "zstd", ("bz2", 2), "lz4"]


def _value() -> dict[str, Any]:
    rng = np.random.default_rng(10)
    return {
        "c_order": rng.standard_normal((700, 300)).round(2),
        "f_order": np.asfortranarray(rng.integers(0, 100, (400, 500)).astype(">i4")),
        "unicode": np.array(["zoblib"] * 20_000),
        "structured": np.zeros(90_000, dtype=[("a", "<i2"), ("b", [("c", "<f8"), ("d", "S3")])]),
        "flags": rng.integers(0, 2, 200_000).astype(bool),
    }


def _dump(path: Path, compress: Any, **options: Any) -> dict[str, Any]:
    value = _value()
    with pytest.warns() if compress in (("gzip", 4), "lz4") else _no_warning():
        zoblib.dump(value, path, compress=compress, pack_threshold=0, chunk_nbytes=1 << 18, **options)
    return value


class _no_warning:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300
    )


LOAD = """
import sys, numpy as np, zoblib
try:
    value = zoblib.load({path!r})
except zoblib.ArchiveError as exc:
    print("ArchiveError", type(exc).__name__, exc)
else:
    print("loaded", "hdf5plugin" in sys.modules)
"""


def _load_elsewhere(path: Path) -> str:
    result = _run(LOAD.format(path=str(path)))
    assert result.returncode == 0, f"the load crashed ({result.returncode}): {result.stderr[-2000:]}"
    assert "Exception ignored" not in result.stderr, result.stderr
    return result.stdout.strip()


def _nodes(path: Path) -> list[str]:
    with h5py.File(path, "r") as file:
        record = json.loads(file.attrs["zoblib"])
    return [ref["node"] for ref in record["refs"]]


@pytest.mark.parametrize("compress", CODECS)
def test_a_fresh_process_loads_compressed_h5_without_hdf5plugin(tmp_path: Path, compress: Any) -> None:
    path = tmp_path / "fresh.h5"
    value = _dump(path, compress)
    script = f"""
    import pickle, sys, zoblib
    value = zoblib.load({str(path)!r})
    assert "hdf5plugin" not in sys.modules
    sys.stdout.buffer.write(pickle.dumps(value))
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    loaded = __import__("pickle").loads(result.stdout)
    for name, array in value.items():
        assert np.array_equal(loaded[name], array), name


@pytest.mark.parametrize("compress", CODECS)
def test_h5py_with_hdf5plugin_reads_the_values_zoblib_wrote(tmp_path: Path, compress: Any) -> None:
    path = tmp_path / "interop.h5"
    value = _dump(path, compress)
    nodes = _nodes(path)
    with h5py.File(path, "r") as file:
        assert file[nodes[0]].compression is not None and not file[nodes[0]].fletcher32
        assert np.array_equal(file[nodes[0]][()], value["c_order"])
        assert np.array_equal(file[nodes[1]][()], value["f_order"])
        assert file[nodes[2]].dtype == np.dtype("<U6")
        assert np.array_equal(file[nodes[2]][()], value["unicode"])
        assert np.array_equal(file[nodes[3]][()], value["structured"])
        assert np.array_equal(file[nodes[4]][()], value["flags"])


def test_fletcher32_matches_hdf5(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    with h5py.File(tmp_path / "f.h5", "w") as file:
        for n in (1, 2, 3, 101, 4097, 1_000_001, 3_000_000):
            for data in (rng.integers(0, 256, n, np.uint8), np.zeros(n, np.uint8), np.full(n, 255, np.uint8)):
                name = f"{n}-{int(data[0])}-{len(file)}"
                file.create_dataset(name, data=data, chunks=(n,), fletcher32=True)
                file.flush()
                stored = file[name].id.read_direct_chunk((0,))[1]
                assert fletcher32(stored[:-4]) == int.from_bytes(stored[-4:], "little"), name


def _as_version_1(path: Path, codec_spec: dict[str, Any] | None, old_filter: dict[str, Any]) -> None:
    """Rewrite a fresh archive as zoblib's format version 1 did: the first HDF5 layout, HDF5
    filters and Fletcher-32."""
    rewrite_in_first_layout(path)
    with h5py.File(path, "r+") as file:
        record = json.loads(file.attrs["zoblib"])
        for name, entry in record["nodes"].items():
            entry.pop("chunk_crc32c", None)
            dataset = file[name]
            if dataset.chunks is None:
                continue
            values, attrs, chunks = dataset[()], dict(dataset.attrs), dataset.chunks
            del file[name]
            new = file.create_dataset(name, data=values, chunks=chunks, fletcher32=True, **old_filter)
            new.attrs.update(attrs)
            if codec_spec is not None:
                entry["codec"] = codec_spec
        record["format_version"] = 1
        file.attrs["zoblib"] = json.dumps(record)
        file.attrs["zoblib_crc32c"] = json.dumps(record_checksum(record))


@pytest.mark.parametrize(
    ("compress", "codec_spec", "old_filter"),
    [
        (("gzip", 4), {"name": "gzip", "configuration": {"level": 4}}, {"compression": "gzip"}),
        ("lz4", {"name": "numcodecs.lz4", "configuration": {"acceleration": 1}}, dict(hdf5plugin.LZ4())),
        ("zstd", None, dict(hdf5plugin.Zstd(clevel=3))),
        (("blosc-lz4", 3), None, dict(hdf5plugin.Blosc(cname="lz4", clevel=3, shuffle=1))),
        (("bz2", 2), None, dict(hdf5plugin.BZip2(blocksize=2))),
    ],
)
def test_version_1_compressed_archives_load_with_their_fletcher32(
    tmp_path: Path, compress: Any, codec_spec: Any, old_filter: dict[str, Any]
) -> None:
    path = tmp_path / "v1.h5"
    value = _dump(path, compress)
    _as_version_1(path, codec_spec, old_filter)
    assert _load_elsewhere(path) == "loaded False"
    loaded = zoblib.load(path)
    assert all(np.array_equal(loaded[name], array) for name, array in value.items())
    # One flipped byte inside a chunk: Fletcher-32 catches it.
    with h5py.File(path, "r") as file:
        info = file[_nodes(path)[0]].id.get_chunk_info(1)
    _flip(path, info.byte_offset + info.size // 2, 0x10)
    assert _load_elsewhere(path).startswith("ArchiveError ChecksumError")


def _flip(path: Path, offset: int, bit: int) -> None:
    with open(path, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)[0]
        file.seek(offset)
        file.write(bytes([byte ^ bit]))


def _find_one(path: Path, pattern: bytes) -> int:
    data = path.read_bytes()
    assert data.count(pattern) >= 1, f"pattern {pattern!r} not found"
    return data.index(pattern)


def _damaged_copies(tmp_path: Path) -> dict[str, Path]:
    """Fresh (format 2, checksummed HDF5 metadata) and golden version 1 archives, damaged."""
    fresh = tmp_path / "fresh.h5"
    zoblib.dump({"x": np.random.default_rng(1).standard_normal(2_000_000)}, fresh, compress=3)
    golden = tmp_path / "golden.h5"
    shutil.copy(GOLDEN_V1, golden)
    float64 = b"\x00\x00\x40\x00\x34\x0b\x00\x34\xff\x03\x00\x00"  # ... exponent bias 1023
    copies: dict[str, Path] = {}
    for name, source, filter_id in (("fresh", fresh, b"\x01\x7d"), ("golden", golden, b"\x01\x00\x08\x00")):
        with h5py.File(source, "r") as file:
            info = file[_nodes(source)[0]].id.get_chunk_info(0)
        cases = {
            "filter_id": _find_one(source, filter_id),
            "exponent_bias": _find_one(source, float64) + 8,
            "chunk_address": _find_one(source, info.byte_offset.to_bytes(8, "little")) + 1,
        }
        for case, offset in cases.items():
            target = tmp_path / f"{name}-{case}.h5"
            shutil.copy(source, target)
            _flip(target, offset, 0x10)
            copies[f"{name}-{case}"] = target
    return copies


def test_damaged_metadata_gives_an_archive_error_never_a_crash_or_wrong_data(tmp_path: Path) -> None:
    copies = _damaged_copies(tmp_path)
    outcomes = {case: _load_elsewhere(path) for case, path in copies.items()}
    wrong = {case: outcome for case, outcome in outcomes.items() if not outcome.startswith("ArchiveError")}
    assert not wrong, outcomes
    assert all(str(copies[case]) in outcome for case, outcome in outcomes.items())


def test_swapped_chunks_are_caught_by_the_record(tmp_path: Path) -> None:
    path = tmp_path / "swapped.h5"
    zoblib.dump({"x": np.arange(4_000_000.0)}, path, compress=("zlib", 1), chunk_nbytes=1 << 20)
    with h5py.File(path, "r+") as file:
        dataset = file[_nodes(path)[0]]
        first, second = dataset.id.read_direct_chunk((0,)), dataset.id.read_direct_chunk((131072,))
        dataset.id.write_direct_chunk((0,), second[1], filter_mask=0)
        dataset.id.write_direct_chunk((131072,), first[1], filter_mask=0)
    outcome = _load_elsewhere(path)
    assert outcome.startswith("ArchiveError ChecksumError") and "chunks swapped" in outcome


def test_a_file_that_is_not_hdf5_inside_gives_an_archive_error_and_no_noise(tmp_path: Path) -> None:
    path = tmp_path / "broken.h5"
    zoblib.dump({"x": np.ones(100_000)}, path, compress=3)
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[:8]) + bytes(len(data) - 8))  # a signature, nothing else
    assert _load_elsewhere(path).startswith("ArchiveError ArchiveCorruptedError")


FULL_DISK = """
import errno, os, numpy as np, zoblib
path = {path!r}
zoblib.dump({{"x": np.arange(100_000)}}, path)
big = np.random.default_rng(0).standard_normal({n})
for compress in (3, 0, 3):
    try:
        zoblib.dump({{"x": big}}, path, compress=compress)
    except zoblib.ArchiveWriteError as exc:
        assert exc.errno == errno.ENOSPC, exc
        print("ArchiveWriteError", compress, flush=True)
    assert np.array_equal(zoblib.load(path)["x"], np.arange(100_000))
# A disk full to the last byte: the staging file cannot even be started.
with open(os.path.join(os.path.dirname(path), "filler"), "wb") as filler:
    try:
        while True:
            filler.write(bytes(1 << 16))
            filler.flush()
    except OSError:
        pass
try:
    zoblib.dump({{"x": np.arange(1000.0)}}, path, compress=3)
except zoblib.ArchiveWriteError as exc:
    print("ArchiveWriteError full", exc.errno, flush=True)
print("survived", flush=True)
"""


@pytest.fixture
def tiny_filesystem(mount_tmpfs: Callable[[str], Path]) -> Path:
    """A real 64 MiB tmpfs."""
    return mount_tmpfs("64m")


def test_full_disk_raises_archive_write_error_without_crash_or_leftovers(tiny_filesystem: Path) -> None:
    path = tiny_filesystem / "full.h5"
    result = _run(FULL_DISK.format(path=str(path), n=12_000_000))  # 96 MB of incompressible floats
    assert result.returncode == 0, f"crashed ({result.returncode}): {result.stderr[-2000:]}"
    lines = result.stdout.split("\n")
    assert lines[:3] == ["ArchiveWriteError 3", "ArchiveWriteError 0", "ArchiveWriteError 3"], result.stdout
    assert lines[3].startswith("ArchiveWriteError full") and lines[4] == "survived", result.stdout
    assert [name for name in os.listdir(tiny_filesystem) if STAGING_MARK in name] == []


PEAK = """
import zoblib

def peak() -> int:  # this process's own high-water RSS (ru_maxrss is inherited across exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))

before = peak()
x = zoblib.load({path!r})["x"]
print((peak() - before) / x.nbytes, before)
"""


def test_loading_a_compressed_h5_peaks_near_one_copy_of_the_array(tmp_path: Path) -> None:
    path = tmp_path / "big.h5"
    values = np.random.default_rng(2).standard_normal(1 << 25).round(3)  # 256 MiB
    zoblib.dump({"x": values}, path, compress=3)
    del values
    result = _run(PEAK.format(path=str(path)))
    assert result.returncode == 0, result.stderr
    ratio = float(result.stdout.split()[0])
    print(f"peak RSS growth while loading: {ratio:.3f} x the array")
    assert ratio < 1.15
