"""Our own golden joblib files (tests/data/joblib/, written by tests/data/make_joblib_files.py
with joblib 1.6.0): they keep loading, and this test needs no joblib."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from joblib_helpers import NO_JOBLIB, run_python

import zoblib

DATA = Path(__file__).resolve().parents[1] / "data"
FOLDER = DATA / "joblib"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_joblib_files", DATA / "make_joblib_files.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()
ARRAY_FILES = sorted([*SCRIPT.COMPRESSED, *SCRIPT.UNCOMPRESSED, SCRIPT.STREAMED])


def _assert_equal(actual: Any, expected: Any, where: str = "value") -> None:
    if isinstance(expected, np.ndarray):
        assert type(actual) in (np.ndarray, np.memmap), where
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, where
        if expected.dtype.hasobject:
            assert actual.tolist() == expected.tolist(), where
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=where)
    elif isinstance(expected, dict):
        assert type(actual) is dict and actual.keys() == expected.keys(), where
        for key in expected:
            _assert_equal(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected) and len(actual) == len(expected), where
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_equal(a, e, f"{where}[{index}]")
    else:
        assert type(actual) is type(expected) and actual == expected, where


def test_the_folder_holds_the_script_s_files_and_is_small() -> None:
    names = sorted(os.listdir(FOLDER))
    assert names == sorted([*ARRAY_FILES, SCRIPT.PLAIN_PICKLE])
    assert sum((FOLDER / name).stat().st_size for name in names) < 100_000


@pytest.mark.parametrize("name", ARRAY_FILES)
def test_golden_file_loads(name: str) -> None:
    expected = SCRIPT.golden_value()
    swapped = expected["other-byte-order"]
    expected["other-byte-order"] = swapped.astype(swapped.dtype.newbyteorder("="))
    loaded = zoblib.load(FOLDER / name)
    _assert_equal(loaded, expected)  # converted to the native byte order, as joblib's load does


@pytest.mark.parametrize("name", [*SCRIPT.UNCOMPRESSED, SCRIPT.STREAMED])
def test_golden_file_maps(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", zoblib.ZoblibWarning)  # unpadded.pkl's unaligned maps
        loaded = zoblib.load(FOLDER / name, mmap_mode="r")
    assert isinstance(loaded["float64"], np.memmap)
    assert loaded["float64"].filename == os.path.abspath(FOLDER / name)
    _assert_equal(loaded, SCRIPT.golden_value())  # mapped arrays keep their byte order


def test_plain_pickle_loads() -> None:
    assert zoblib.load(FOLDER / SCRIPT.PLAIN_PICKLE) == {"no": "arrays", "numbers": [1, 2.5, 3j]}


def test_golden_files_load_where_joblib_cannot_be_imported() -> None:
    code = NO_JOBLIB + (
        "import importlib.util, os, sys, numpy as np, zoblib\n"
        "folder = sys.argv[1]\n"
        "for name in sorted(os.listdir(folder)):\n"
        "    value = zoblib.load(os.path.join(folder, name))\n"
        "    assert isinstance(value, dict), name\n"
        "    if 'float64' in value:\n"
        "        assert isinstance(value['float64'], np.ndarray) and value['float64'].shape == (64,)\n"
        "assert sys.modules['joblib'] is None\n"
        "print('ok', len(os.listdir(folder)))\n"
    )
    done = run_python(code, str(FOLDER))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", str(len(ARRAY_FILES) + 1)]
    assert "joblib" not in sys.modules or sys.modules["joblib"] is not None  # this process untouched


def test_without_lz4_an_lz4_file_names_the_package() -> None:
    code = (
        "import sys\nsys.modules['lz4'] = None\nsys.modules['lz4.frame'] = None\n"
        "import zoblib\n"
        "try:\n    zoblib.load(sys.argv[1])\n"
        "except zoblib.ArchiveError as exc:\n    print(exc)\n"
        "print(zoblib.load(sys.argv[2])['text'])\n"  # the other compressors need no lz4
    )
    done = run_python(code, str(FOLDER / "lz4.pkl"), str(FOLDER / "gzip.pkl"))
    assert done.returncode == 0, done.stderr
    assert "needs the lz4 package (pip install lz4)" in done.stdout
    assert str(FOLDER / "lz4.pkl") in done.stdout
    assert done.stdout.strip().endswith("C'est l'été !")
