"""What the tests of joblib's files share: the values they dump, and how results are compared."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

#: The compressors joblib writes, and the levels tested for each.
COMPRESSORS = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")
LEVELS = (1, 9)
JOBLIB_DATA = None  # set below when joblib is installed: its own golden files (0.8 to 0.11)
try:
    import joblib.test.data as _joblib_data

    JOBLIB_DATA = Path(os.path.dirname(_joblib_data.__file__))
except ImportError:  # the tests that need joblib skip
    pass

_OTHER_ORDER = ">" if sys.byteorder == "little" else "<"


def many_arrays() -> dict[str, Any]:
    """Arrays of every kind joblib writes differently, in a nest of containers."""
    rng = np.random.default_rng(13)
    # 1.2 MB: more than one read of every buffer on the way; repeated, so quick to compress.
    big = np.tile(rng.standard_normal(1000), 150)
    return {
        "float64": rng.standard_normal(1000),
        "float16": rng.standard_normal(10).astype(np.float16),
        "ints": [np.arange(10, dtype=t) for t in (np.int8, np.uint16, np.int32, np.uint64)],
        "complex": rng.standard_normal(5) + 1j * rng.standard_normal(5),
        "bool": rng.random(33) > 0.5,
        "unicode": np.array(["a", "été", "日本"], dtype="<U3"),
        "bytes": np.array([b"a", b"bc"], dtype="S2"),
        "datetime": np.array(["2026-01-01", "NaT"], dtype="datetime64[D]"),
        "timedelta": np.array([1, -5], dtype="timedelta64[s]"),
        "object": np.array([1, "two", None, Fraction(1, 3), {"k": [1, 2]}], dtype=object),
        "object-2d": np.array([[1, "a"], [None, 2.5]], dtype=object),
        "structured": np.array(
            [(1, 2.0, "x"), (3, 4.0, "y")], dtype=[("a", "<i4"), ("b", "<f8"), ("c", "<U1")]
        ),
        "structured-other-order": np.array(
            [(1, 2.0)], dtype=[("a", f"{_OTHER_ORDER}i4"), ("b", f"{_OTHER_ORDER}f8")]
        ),
        "structured-mixed-orders": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", ">f8")]),
        "nested-structured": np.zeros(2, dtype=[("p", [("x", "<f4"), ("y", "<f4")]), ("n", "<i8", (2,))]),
        "other-byte-order": np.arange(7, dtype=f"{_OTHER_ORDER}f8"),
        "fortran": np.asfortranarray(rng.standard_normal((7, 5, 3))),
        "non-contiguous": np.arange(100)[::3],
        "0-d": np.array(42),
        "0-d-object": np.array("text", dtype=object),
        "empty": np.zeros(0),
        "empty-2d": np.zeros((3, 0), dtype=np.int16),
        "matrix": _matrix(),
        "big": big,
        "same-twice": [big[:10].copy()] * 2,
        "nested": {"tuple": (np.ones(3), [np.zeros(2), {"deep": np.arange(4)}]), "set": {1, 2}},
        "scalars": [np.float32(1.5), np.int64(-3), 1, 2.5, "s", b"b", None, True],
    }


def _matrix() -> np.matrix[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # a subclass people still dump
        return np.matrix([[1, 2], [3, 4]])


def memmapped_input(path: Path) -> np.memmap[Any, Any]:
    """A ``np.memmap`` to dump (joblib writes the array it maps)."""
    mapped = np.memmap(path, dtype=np.float32, mode="w+", shape=(50, 4))
    mapped[:] = np.arange(200, dtype=np.float32).reshape(50, 4)
    mapped.flush()
    return mapped


def assert_alike(actual: Any, expected: Any, where: str = "value") -> None:
    """``actual`` (zoblib's load) equals ``expected`` (joblib's load of the same file).

    Arrays: the same dtype, shape and values; ``actual`` of ``expected``'s class or a subclass
    (zoblib gives back an ``np.matrix`` that joblib 1.6.0 on numpy 2 returns as an ndarray, a
    matrix view of the ``np.memmap`` joblib returns under ``mmap_mode``).
    """
    if isinstance(expected, np.ndarray):
        mapped = actual.base if isinstance(actual, np.matrix) else actual  # a matrix view of a map
        assert isinstance(actual, type(expected)) or isinstance(mapped, type(expected)), (
            f"{where}: {type(actual)} is not a {type(expected)}"
        )
        assert actual.dtype == expected.dtype, f"{where}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != {expected.shape}"
        if expected.dtype.hasobject:
            for index in np.ndindex(expected.shape):
                assert_alike(actual[index], expected[index], f"{where}[{index}]")
        else:
            np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected), err_msg=where)
        return
    assert type(actual) is type(expected), f"{where}: {type(actual)} is not {type(expected)}"
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), f"{where}: keys differ"
        for key in expected:
            assert_alike(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{where}: lengths differ"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_alike(a, e, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def run_python(code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (a crash there fails the test, not the session)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


#: A prelude that makes ``import joblib`` fail, as on a machine without joblib.
NO_JOBLIB = "import sys\nsys.modules['joblib'] = None\n"
