"""joblib's own golden files (joblib 0.8.4 to 0.11, Python 2.7 to 3.6, shipped in the joblib
wheel's ``joblib/test/data``), loaded by zoblib and compared with joblib's load of each.

They are read where joblib installed them, not copied here. The Python 2.7 files hold Python 2
strings that joblib cannot load under Python 3 either: zoblib refuses them with joblib's words.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from joblib_helpers import JOBLIB_DATA, assert_alike

import zoblib

assert JOBLIB_DATA is not None
_SIDE_FILE = re.compile(r"_\d+\.npy(\.z)?$")
PICKLES = sorted(
    name
    for name in os.listdir(JOBLIB_DATA)
    if name.startswith("joblib_") and not _SIDE_FILE.search(name) and not name.endswith(".py")
)
PYTHON2 = [name for name in PICKLES if "_py27_" in name]
PYTHON3 = [name for name in PICKLES if name not in PYTHON2]
#: joblib's test of these files: what each holds (little-endian where it matters).
EXPECTED = [
    np.arange(5, dtype="<i8"),
    np.arange(5, dtype="<f8"),
    np.array([1, "abc", {"a": 1, "b": 2}], dtype="O"),
    np.arange(256, dtype=np.uint8).tobytes(),
    None,  # np.matrix([0, 1, 2]): a matrix in zoblib, an ndarray in joblib on numpy 2
    "C'est l'\xe9t\xe9 !",
]


def test_the_files_are_there() -> None:
    assert len(PYTHON3) >= 25 and len(PYTHON2) >= 10, PICKLES


def _load(load: Any, path: Path, **options: Any) -> tuple[Any, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=".+align should be passed.+boolean")  # numpy on old dtypes
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)  # np.matrix
        value = load(path, **options)
    return value, caught


@pytest.mark.parametrize("name", PYTHON3)
def test_loads_as_joblib_does(name: str) -> None:
    path = JOBLIB_DATA / name
    ours, ours_warned = _load(zoblib.load, path)
    theirs, theirs_warned = _load(joblib.load, path)
    assert_alike(ours, theirs)
    for got, expected in zip(ours, EXPECTED, strict=True):
        if expected is not None:
            assert_alike(got, expected)
    assert type(ours[4]) is np.matrix
    np.testing.assert_array_equal(ours[4], [[0, 1, 2]])
    # One DeprecationWarning for joblib < 0.10's formats, with joblib's text; nothing else.
    assert [(w.category, str(w.message)) for w in ours_warned] == [
        (w.category, str(w.message)) for w in theirs_warned
    ]
    assert len(ours_warned) == (1 if re.search(r"_0\.(8|9)\.", name) else 0)


@pytest.mark.parametrize("name", [n for n in PYTHON3 if n.endswith(".pkl")])
def test_maps_as_joblib_does(name: str) -> None:
    path = JOBLIB_DATA / name
    ours, ours_warned = _load(zoblib.load, path, mmap_mode="r")
    theirs, theirs_warned = _load(joblib.load, path, mmap_mode="r")
    assert_alike(ours, theirs)
    assert isinstance(ours[0], np.memmap) and isinstance(ours[1], np.memmap)
    assert ours[0].filename.startswith(os.path.abspath(path))  # the pickle, or its .npy files
    assert len(ours_warned) == len(theirs_warned)
    assert all(issubclass(o.category, t.category) for o, t in zip(ours_warned, theirs_warned, strict=True))
    unaligned = [w for w in ours_warned if "segmentation fault" in str(w.message)]
    # joblib 0.10 and 0.11 wrote no padding: their arrays may start anywhere (joblib warns 3 times).
    assert len(unaligned) == (3 if "_0.1" in name else 0)


@pytest.mark.parametrize("name", PYTHON2)
def test_python_2_files_are_refused_as_joblib_does(name: str) -> None:
    path = JOBLIB_DATA / name
    with pytest.raises(ValueError, match="generated with python 2") as theirs, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        joblib.load(path)
    with pytest.raises(zoblib.ArchiveError) as ours, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        zoblib.load(path)
    first_sentence = str(theirs.value).split(". ")[0]  # what joblib's own test matches
    assert first_sentence in str(ours.value)
    assert str(path) in str(ours.value)


def _copy_without(tmp_path: Path, name: str, missing: str) -> Path:
    for entry in os.listdir(JOBLIB_DATA):
        if entry.startswith(name) and not entry.endswith(missing):
            shutil.copy(JOBLIB_DATA / entry, tmp_path / entry)
    return tmp_path / name


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("joblib_0.9.2_pickle_py35_np19.pkl", "_02.npy"),
        ("joblib_0.9.4.dev0_compressed_cache_size_pickle_py35_np19.gz", "_01.npy.z"),
    ],
)
def test_a_missing_side_file_is_named(tmp_path: Path, name: str, missing: str) -> None:
    path = _copy_without(tmp_path, name, missing)
    with pytest.raises(zoblib.ArchiveCorruptedError, match="is missing") as caught, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        zoblib.load(path)
    assert str(path) in str(caught.value) and name + missing in str(caught.value)


def test_multi_file_format_from_memory_asks_for_the_path() -> None:
    data = (JOBLIB_DATA / "joblib_0.9.2_pickle_py35_np19.pkl").read_bytes()
    with pytest.raises(zoblib.ArchiveError, match="load it by its path") as caught:
        zoblib.load(io.BytesIO(data))
    assert not isinstance(caught.value, zoblib.ArchiveCorruptedError)  # nothing is damaged


def test_a_side_file_name_must_be_a_plain_name(tmp_path: Path) -> None:
    # A crafted NDArrayWrapper naming a file elsewhere on the disk is refused before reading it.
    target = tmp_path / "elsewhere.npy"
    np.save(target, np.arange(3))
    folder = tmp_path / "folder"
    folder.mkdir()
    for filename in ["../elsewhere.npy", str(target), ""]:
        path = folder / "crafted.pkl"
        path.write_bytes(_ndarray_wrapper_pickle(filename))
        with (
            pytest.raises(zoblib.ArchiveCorruptedError, match="not a plain file name"),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", DeprecationWarning)
            zoblib.load(path)


def _ndarray_wrapper_pickle(filename: str) -> bytes:
    """A protocol 0 pickle of joblib's ``NDArrayWrapper`` (written by hand: no joblib class used)."""
    state = {"filename": filename, "subclass": np.ndarray, "allow_mmap": True}
    return (
        b"cjoblib.numpy_pickle\nNDArrayWrapper\n)\x81"  # GLOBAL, EMPTY_TUPLE, NEWOBJ
        + pickle.dumps(state, protocol=2)[2:-1]  # the state dict's opcodes (no PROTO, no STOP)
        + b"b."  # BUILD, STOP
    )
