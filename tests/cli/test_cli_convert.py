"""``zoblib convert``: numpy files, pickles, joblib files and archives into archives."""

from __future__ import annotations

import inspect
import json
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from cli_helpers import SUFFIXES, Run, model

import zoblib

WARNING = "WARNING: loading"


def same_model(value: object) -> None:
    expected = model()
    assert isinstance(value, dict) and value.keys() == expected.keys()
    np.testing.assert_array_equal(value["weights"], expected["weights"])
    np.testing.assert_array_equal(value["layers"][1]["b"], expected["layers"][1]["b"])


def test_npy(run: Run, tmp_path: Path) -> None:
    array = np.arange(12.0).reshape(3, 4, order="F")
    np.save(tmp_path / "x.npy", array)
    result = run("convert", "x.npy", "x.zob")
    assert result.returncode == 0, result.stderr
    assert WARNING not in result.stderr  # numpy files run no pickle
    assert result.stdout.startswith("wrote x.zob")
    np.testing.assert_array_equal(zoblib.load(tmp_path / "x.zob"), array)


def test_npz_compressed_into_hdf5(run: Run, tmp_path: Path) -> None:
    np.savez(tmp_path / "y.npz", a=np.arange(300_000), b=np.ones((2, 2)))
    result = run("convert", "y.npz", "y.h5", "--compress", "zlib:3", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["input_kind"] == "npz" and document["target"] == "y.h5" and document["nbytes"] > 0
    value = zoblib.load(tmp_path / "y.h5")
    np.testing.assert_array_equal(value["a"], np.arange(300_000))
    (a,) = json.loads(run("inspect", "--json", "y.h5").stdout)["arrays"]
    assert a["name"] == "a" and a["codec"]["id"] == "zlib" and a["codec"]["level"] == 3


def test_object_npy_refused(run: Run, tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    result = run("convert", "o.npy", "o.zob")
    assert result.returncode == 1 and "o.npy" in result.stderr and "without unpickling" in result.stderr
    assert not (tmp_path / "o.zob").exists()


def test_plain_pickle_warns(run: Run, tmp_path: Path) -> None:
    with open(tmp_path / "m.pkl", "wb") as file:
        pickle.dump(model(), file)
    result = run("convert", "m.pkl", "m.zarr")
    assert result.returncode == 0, result.stderr
    assert f"{WARNING} m.pkl runs the code" in result.stderr
    same_model(zoblib.load(tmp_path / "m.zarr"))


@pytest.mark.parametrize(("source", "target"), [("zip", "zarr"), ("zarr", "hdf5"), ("hdf5", "zip")])
def test_between_containers(run: Run, tmp_path: Path, source: str, target: str) -> None:
    zoblib.dump(model(), tmp_path / f"in{SUFFIXES[source]}")
    out = f"out{SUFFIXES[target]}"
    result = run("convert", f"in{SUFFIXES[source]}", out, "--compress", "3")
    assert result.returncode == 0, result.stderr
    assert json.loads(run("inspect", "--json", out).stdout)["container"] == target
    same_model(zoblib.load(tmp_path / out))


def test_format_option(run: Run, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones(10))
    assert run("convert", "x.npy", "x.bin", "--format", "hdf5").returncode == 0
    assert json.loads(run("inspect", "--json", "x.bin").stdout)["container"] == "hdf5"


def test_refuses_to_overwrite(run: Run, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones(10))
    (tmp_path / "x.zob").write_bytes(b"precious")
    result = run("convert", "x.npy", "x.zob")
    assert result.returncode == 1 and "--force" in result.stderr
    assert (tmp_path / "x.zob").read_bytes() == b"precious"
    forced = run("convert", "x.npy", "x.zob", "--force", script=True)
    assert forced.returncode == 0, forced.stderr
    np.testing.assert_array_equal(zoblib.load(tmp_path / "x.zob"), np.ones(10))


def test_unreadable_input(run: Run, tmp_path: Path) -> None:
    (tmp_path / "junk.bin").write_bytes(b"\x00junk" * 10)
    result = run("convert", "junk.bin", "junk.zob")
    assert result.returncode == 1 and "cannot read 'junk.bin'" in result.stderr
    assert not (tmp_path / "junk.zob").exists()
    missing = run("convert", "nothing.pkl", "out.zob")
    assert missing.returncode == 2 and "nothing.pkl" in missing.stderr


def _load_reads_joblib_files(tmp_path: Path) -> bool:
    path = tmp_path / "probe.joblib"
    joblib.dump({"x": np.arange(10)}, path)
    try:
        value = zoblib.load(path)
    except zoblib.ZoblibError:
        return False
    return isinstance(value, dict) and np.array_equal(value.get("x"), np.arange(10))


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_file(run: Run, tmp_path: Path, compress: int) -> None:
    if not _load_reads_joblib_files(tmp_path):
        pytest.skip("zoblib.load cannot read a file written by joblib.dump yet (issue 13 part 2)")
    joblib.dump(model(), tmp_path / "m.joblib", compress=compress)
    result = run("convert", "m.joblib", "m.zob")
    assert result.returncode == 0, result.stderr
    assert f"{WARNING} m.joblib" in result.stderr
    same_model(zoblib.load(tmp_path / "m.zob"))


def test_joblib_file_not_read_yet_is_named(run: Run, tmp_path: Path) -> None:
    if _load_reads_joblib_files(tmp_path):
        pytest.skip("zoblib.load reads joblib's files: test_joblib_file covers them")
    joblib.dump({"x": np.arange(100_000)}, tmp_path / "m.joblib")
    result = run("convert", "m.joblib", "m.zob")
    assert result.returncode == 1 and "joblib.dump" in result.stderr


def test_safe(run: Run, tmp_path: Path) -> None:
    with open(tmp_path / "m.pkl", "wb") as file:
        pickle.dump({"x": np.arange(10)}, file)
    zoblib.dump({"x": np.arange(300_000)}, tmp_path / "m.zob")
    if "safe" not in inspect.signature(zoblib.load).parameters:
        result = run("convert", "m.zob", "out.zob", "--safe")
        assert result.returncode == 1 and "safe=True" in result.stderr
        pytest.skip("zoblib.load has no safe= yet (issue 13 part 1): checked that --safe refuses")
    result = run("convert", "m.zob", "out.zob", "--safe")
    assert result.returncode == 0, result.stderr
    assert WARNING not in result.stderr
    np.testing.assert_array_equal(zoblib.load(tmp_path / "out.zob")["x"], np.arange(300_000))


def test_pickle_that_fails_to_load(run: Run, tmp_path: Path) -> None:
    # GLOBAL of a module that does not exist, called with no arguments.
    (tmp_path / "moved.pkl").write_bytes(b"cnonexistent_module_of_zoblib_tests\nThing\n)R.")
    result = run("convert", "moved.pkl", "moved.zob")
    assert result.returncode == 1
    assert (
        "cannot read 'moved.pkl'" in result.stderr and "nonexistent_module_of_zoblib_tests" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "moved.zob").exists()


def test_same_file(run: Run, tmp_path: Path) -> None:
    zoblib.dump({"x": np.arange(10)}, tmp_path / "m.zob")
    before = (tmp_path / "m.zob").read_bytes()
    result = run("convert", "m.zob", "./m.zob", "--force")
    assert result.returncode == 1 and "same file" in result.stderr
    assert (tmp_path / "m.zob").read_bytes() == before
