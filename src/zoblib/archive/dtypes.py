"""numpy dtypes in archives: the exact record zoblib reads back, and the Zarr v3 data type.

zoblib reads every array with the numpy dtype it recorded (``dtype_to_json``), byte order
included, so round trips are exact whatever zarr-python makes of the type. The Zarr ``data_type``
is for other readers: core numeric types, zarr-python's datetime, string and structured
extensions, and ``raw_bytes`` for anything Zarr cannot describe (the numpy dtype is then in the
array's attributes).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np


def can_extract(dtype: np.dtype[Any]) -> bool:
    """Whether arrays of ``dtype`` can be stored as raw bytes (no Python object pointers)."""
    return not dtype.hasobject and dtype.itemsize > 0


def dtype_to_json(dtype: np.dtype[Any]) -> Any:
    """A JSON value that :func:`dtype_from_json` turns back into exactly ``dtype``.

    Structured types with fields out of order or overlapping, which numpy's ``descr`` cannot
    express, are written in numpy's dict form: ``{"__dict_descr__": {"names", "formats",
    "offsets", "itemsize"}}`` with each format itself in this JSON form.
    """
    if dtype.fields is None and dtype.subdtype is None:
        return dtype.str
    # A copy of the cached form: a model holds hundreds of arrays of one struct (a forest's
    # tree nodes), and numpy's descr of a struct costs 0.1 ms (copy.deepcopy, 0.1 ms too).
    return _copy_json(_compound_to_json(dtype))


def _copy_json(value: Any) -> Any:
    """A copy of a JSON value's lists and dicts (its strings and numbers are immutable)."""
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    return value


@functools.lru_cache(maxsize=256)
def _compound_to_json(dtype: np.dtype[Any]) -> Any:
    # Equal dtypes have equal descrs (fields, offsets, itemsize), so == is the right key.
    try:
        descr = np.lib.format.dtype_to_descr(dtype)
    except ValueError:  # "not defined for types with overlapping or out-of-order fields"
        return _dict_form(dtype)
    return _descr_to_json(descr)


def _dict_form(dtype: np.dtype[Any]) -> dict[str, Any]:
    names = list(dtype.names or ())
    fields: Mapping[str, Any] = dtype.fields or {}
    if any(len(fields[name]) == 3 for name in names):
        raise ValueError(f"cannot record dtype {dtype!r}: titled fields out of order")
    return {
        "__dict_descr__": {
            "names": names,
            "formats": [dtype_to_json(fields[name][0]) for name in names],
            "offsets": [int(fields[name][1]) for name in names],
            "itemsize": dtype.itemsize,
        }
    }


def _descr_to_json(descr: Any) -> Any:
    if isinstance(descr, (list, tuple)):
        return [_descr_to_json(item) for item in descr]
    if isinstance(descr, dict):
        return {"__dict_descr__": {key: _descr_to_json(value) for key, value in descr.items()}}
    return descr


def dtype_from_json(value: Any) -> np.dtype[Any]:
    """The numpy dtype recorded by :func:`dtype_to_json`."""
    if isinstance(value, str):
        return np.dtype(value)
    if isinstance(value, dict) and set(value.get("__dict_descr__", ())) == {
        "names",
        "formats",
        "offsets",
        "itemsize",
    }:
        spec = value["__dict_descr__"]
        formats = [dtype_from_json(item) for item in spec["formats"]]
        return np.dtype(
            {
                "names": spec["names"],
                "formats": formats,
                "offsets": spec["offsets"],
                "itemsize": spec["itemsize"],
            }
        )
    return np.lib.format.descr_to_dtype(_json_to_descr(value))


def _json_to_descr(value: Any) -> Any:
    if isinstance(value, dict):
        inner = value["__dict_descr__"]
        return {key: _json_to_descr(item) for key, item in inner.items()}
    if isinstance(value, list):
        if value and all(isinstance(field, list) for field in value):
            return [_json_to_field(field) for field in value]
        return tuple(_json_to_descr(item) for item in value)
    return value


def _json_to_field(field: list[Any]) -> tuple[Any, ...]:
    name = tuple(field[0]) if isinstance(field[0], list) else field[0]
    rest = [_json_to_descr(item) if isinstance(item, (list, dict)) else item for item in field[1:]]
    if len(rest) == 2:
        rest[1] = tuple(rest[1])
    return (name, *rest)


def zarr_data_type(dtype: np.dtype[Any]) -> tuple[Any, Any, str | None]:
    """The Zarr v3 ``data_type``, a valid ``fill_value`` and the ``bytes`` codec's endian.

    Falls back to ``raw_bytes`` of the item size when Zarr cannot describe ``dtype`` exactly.
    """
    endian: str | None = None
    if dtype.fields is None and dtype.itemsize > 1 and dtype.kind not in "SV":
        endian = "big" if dtype.byteorder == ">" else "little"
    native = dtype.newbyteorder("=") if dtype.fields is None else dtype
    if dtype.fields is None or _is_little_or_bytes(dtype):
        resolved = _zarr_dtype(native)
        if resolved is not None:
            zarr_type, fill = resolved
            if dtype.fields is not None:
                endian = "little"
            return zarr_type, fill, endian
    raw = {"name": "raw_bytes", "configuration": {"length_bytes": dtype.itemsize}}
    return raw, "", None


def _is_little_or_bytes(dtype: np.dtype[Any]) -> bool:
    if dtype.fields is None:
        return dtype.byteorder in "<|" or dtype.itemsize == 1 or dtype.byteorder == "="
    return all(_is_little_or_bytes(dtype.fields[name][0]) for name in dtype.names or ())


_CORE_NAMES = {"b": "bool", "i": "int", "u": "uint", "f": "float", "c": "complex"}
_CORE_FILL: dict[str, Any] = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": [0.0, 0.0]}


def _core_zarr_dtype(dtype: np.dtype[Any]) -> tuple[Any, Any] | None:
    """Zarr v3 core types, without importing zarr (slow to import) for the common case."""
    if dtype.fields is not None or dtype.kind not in _CORE_NAMES or dtype.char in "gG":
        return None
    if dtype.kind == "b":
        return "bool", False
    bits = dtype.itemsize * 8
    return f"{_CORE_NAMES[dtype.kind]}{bits}", _CORE_FILL[dtype.kind]


def _has_padding(dtype: np.dtype[Any]) -> bool:
    """Whether a structured dtype has bytes outside its fields, or fields out of order."""
    if dtype.fields is None:
        return False
    position = 0
    for name in dtype.names or ():
        field, offset = dtype.fields[name][:2]
        if offset != position or _has_padding(field.base):
            return True
        position += field.itemsize
    return position != dtype.itemsize


def _zarr_dtype(dtype: np.dtype[Any]) -> tuple[Any, Any] | None:
    core = _core_zarr_dtype(dtype)
    if core is not None:
        return core
    if _has_padding(dtype):
        # zarr-python cannot describe padded structs (scikit-learn's tree nodes): known without
        # importing it, which costs a quarter of a second in a fresh process.
        return None
    from zarr.dtype import parse_data_type  # type: ignore[attr-defined]  # import late: zarr is slow to import

    if dtype.kind in "Mm" and np.datetime_data(dtype)[0] == "generic":
        # zarr-python rejects any fill value of a generic-unit datetime (and with it the whole
        # group's listing): other readers see the int64 counts, zoblib the recorded dtype.
        return "int64", 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zarr_type = parse_data_type(dtype, zarr_format=3)
            if zarr_type.to_native_dtype() != dtype:
                return None
            fill = zarr_type.to_json_scalar(zarr_type.default_scalar(), zarr_format=3)
            zarr_type.from_json_scalar(fill, zarr_format=3)  # zarr must read back what we write
            return zarr_type.to_json(zarr_format=3), fill
    except Exception:  # zarr cannot describe it: padded structs, subarrays, ...
        return None
