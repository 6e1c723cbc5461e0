"""Test helpers for zoblib and for other archive backends: strategies and exact comparisons.

:mod:`zoblib.testing.strategies` draws dtypes, arrays and object graphs with hypothesis;
:func:`assert_same_object` checks that a loaded object is exactly the dumped one: same types,
dtypes (byte order included), shapes, memory order where it was contiguous, the same bits in
every value (NaN payloads, signed zeros), and the same sharing (an object referenced twice
comes back as one object).
"""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Any

import numpy as np

__all__ = ["assert_arrays_identical", "assert_same_object"]

NDArray = np.ndarray[Any, Any]
#: Types whose identity a faithful round trip preserves (pickle's memo keeps them shared).
_SHARED_TYPES = (list, dict, set, np.ndarray, np.ma.MaskedArray)


#: Bytes of a long double that hold its value: x87 extended precision keeps 10 of its 12 or 16.
_LONG_DOUBLE_VALUE_NBYTES = 10 if np.finfo(np.longdouble).nmant == 63 else np.dtype(np.longdouble).itemsize


def _value_bytes(array: NDArray) -> list[bytes]:
    """The bytes of every value of ``array``: not padding between fields, nor inside long doubles."""
    if array.dtype.names is not None:
        return [part for name in array.dtype.names for part in _value_bytes(array[name])]
    if array.dtype.kind == "c" and array.dtype.itemsize == 2 * np.dtype(np.longdouble).itemsize:
        return _value_bytes(array.real) + _value_bytes(array.imag)
    data = np.ascontiguousarray(array)
    if data.dtype.kind == "f" and data.dtype.itemsize == np.dtype(np.longdouble).itemsize:
        # Copies of a long double need not keep its padding bytes (numpy's pickling does not).
        words = data.reshape(-1).view(np.uint8).reshape(-1, data.dtype.itemsize)
        keep = (
            slice(0, _LONG_DOUBLE_VALUE_NBYTES)
            if data.dtype.byteorder != ">"
            else slice(-_LONG_DOUBLE_VALUE_NBYTES, None)
        )
        return [words[:, keep].tobytes()]
    return [data.tobytes()]


def assert_arrays_identical(
    expected: NDArray,
    actual: Any,
    where: str = "array",
    *,
    lazy_arrays: bool = False,
    _memo: dict[int, Any] | None = None,
) -> None:
    """``actual`` (an ndarray, memmap or anything ``np.asarray`` takes) holds exactly ``expected``.

    Compares dtype (byte order and structure included), shape, the bits of every value (fields of
    structured dtypes one by one, so padding bytes are ignored) and, for arrays that were
    Fortran- but not C-contiguous, the Fortran order.
    """
    values = np.asarray(actual)
    assert values.dtype == expected.dtype, f"{where}: dtype {values.dtype!r} != {expected.dtype!r}"
    assert values.dtype.str == expected.dtype.str, (
        f"{where}: dtype {values.dtype.str} != {expected.dtype.str}"
    )
    if expected.dtype.names is not None:
        assert values.dtype.descr == expected.dtype.descr, (
            f"{where}: {values.dtype.descr} != {expected.dtype.descr}"
        )
    assert values.shape == expected.shape, f"{where}: shape {values.shape} != {expected.shape}"
    if expected.dtype.hasobject:
        for index in np.ndindex(*expected.shape):
            assert_same_object(
                expected[index],
                values[index],
                lazy_arrays=lazy_arrays,
                _where=f"{where}[{index}]",
                _memo=_memo,
            )
        return
    assert _value_bytes(values) == _value_bytes(expected), (
        f"{where}: values differ:\n{values!r}\n!=\n{expected!r}"
    )
    if (
        expected.ndim > 1
        and expected.flags.f_contiguous
        and not expected.flags.c_contiguous
        and expected.size > 1
    ):
        assert values.flags.f_contiguous, f"{where}: Fortran order was lost"


def _float_bits(value: float) -> bytes:
    return struct.pack("<d", value)


def assert_same_object(
    expected: Any,
    actual: Any,
    *,
    lazy_arrays: bool = False,
    _where: str = "value",
    _memo: dict[int, Any] | None = None,
) -> None:
    """Assert that ``actual`` (a loaded object) is exactly ``expected`` (the dumped one).

    With ``lazy_arrays``, a numpy array may come back as an ``np.memmap`` or a
    :class:`zoblib.LazyArray` (what ``load(..., mmap_mode=...)`` gives).
    """
    memo: dict[int, Any] = {} if _memo is None else _memo
    where = _where
    if isinstance(expected, _SHARED_TYPES):
        if id(expected) in memo:
            assert actual is memo[id(expected)], (
                f"{where}: an object referenced twice came back as two objects"
            )
            return
        memo[id(expected)] = actual

    def recurse(e: Any, a: Any, label: str) -> None:
        assert_same_object(e, a, lazy_arrays=lazy_arrays, _where=label, _memo=memo)

    if type(expected) is np.ma.MaskedArray:
        assert type(actual) is np.ma.MaskedArray, f"{where}: {type(actual)} is not a MaskedArray"
        assert_arrays_identical(np.asarray(expected.data), actual.data, f"{where}.data")
        assert np.array_equal(np.ma.getmaskarray(expected), np.ma.getmaskarray(actual)), (
            f"{where}: masks differ"
        )
        assert_arrays_identical(
            np.asarray(expected.fill_value), np.asarray(actual.fill_value), f"{where}.fill_value"
        )
        assert expected.hardmask == actual.hardmask, f"{where}: hard_mask differs"
        return
    if type(expected) is np.ndarray:
        from zoblib import LazyArray

        allowed: tuple[type, ...] = (np.ndarray, np.memmap, LazyArray) if lazy_arrays else (np.ndarray,)
        assert type(actual) in allowed, f"{where}: got {type(actual)}, expected one of {allowed}"
        assert_arrays_identical(expected, actual, where, lazy_arrays=lazy_arrays, _memo=memo)
        return
    assert type(actual) is type(expected), f"{where}: type {type(actual)} != {type(expected)}"
    if isinstance(expected, np.generic):
        assert_arrays_identical(np.asarray(expected), np.asarray(actual), where)
    elif isinstance(expected, float):
        same = (math.isnan(expected) and math.isnan(actual)) or _float_bits(expected) == _float_bits(actual)
        assert same, f"{where}: {actual!r} != {expected!r}"
    elif isinstance(expected, complex):
        recurse(expected.real, actual.real, f"{where}.real")
        recurse(expected.imag, actual.imag, f"{where}.imag")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{where}: length {len(actual)} != {len(expected)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            recurse(e, a, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key, e in expected.items():
            recurse(e, actual[key], f"{where}[{key!r}]")
    elif isinstance(expected, (set, frozenset)):
        assert len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for item in expected:
            assert any(_same_scalar(item, other) for other in actual), f"{where}: {item!r} is missing"
    elif dataclasses.is_dataclass(expected):
        for field in dataclasses.fields(expected):
            recurse(getattr(expected, field.name), getattr(actual, field.name), f"{where}.{field.name}")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def _same_scalar(expected: Any, actual: Any) -> bool:
    try:
        assert_same_object(expected, actual)
    except AssertionError:
        return False
    return True
