"""Hypothesis strategies for zoblib's round-trip tests: numpy dtypes, arrays and object graphs.

Array values are drawn as raw bytes (from a seeded generator, so big arrays do not exhaust
hypothesis's buffer) and then made valid: booleans become 0/1, unicode code points fall below
U+110000, and floats get NaNs with payloads, signed zeros and infinities. Every bit pattern that
survives is one a faithful archive must give back.

The strategies only need hypothesis and numpy (no pytest)::

    from hypothesis import given
    from zoblib.testing import strategies as zst

    @given(zst.object_graphs())
    def test_something(value): ...
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

__all__ = [
    "BYTE_ORDERS",
    "DATETIME_UNITS",
    "NATIVE_BYTE_ORDER",
    "Record",
    "array_shapes",
    "arrays",
    "dtypes",
    "hashable_scalars",
    "masked_arrays",
    "numeric_dtypes",
    "numpy_scalars",
    "object_arrays",
    "object_graphs",
    "python_scalars",
    "random_values",
    "scalar_dtypes",
    "structured_dtypes",
]

NDArray = np.ndarray[Any, Any]

#: Explicit byte orders: every multi-byte dtype is drawn in both.
BYTE_ORDERS = ("<", ">")
#: This machine's byte order, as a dtype prefix.
NATIVE_BYTE_ORDER = "<" if sys.byteorder == "little" else ">"
#: Every unit numpy's datetime64 and timedelta64 accept (generic units excepted).
DATETIME_UNITS = ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as")

_INTEGER_CODES = ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8")
_FLOAT_CODES = ("f2", "f4", "f8", "g")  # 'g' is long double (float128 on x86-64 Linux)
_COMPLEX_CODES = ("c8", "c16", "G")
#: Bit patterns of float values a byte-faithful archive must keep: NaNs with payloads (quiet
#: and signalling, both signs), negative zero and both infinities.
_SPECIAL_FLOAT_BITS: dict[int, tuple[int, ...]] = {
    2: (0x7E01, 0xFC01, 0x7D55, 0x8000, 0x7C00, 0xFC00),
    4: (0x7FC00001, 0xFF800001, 0x7FA5A5A5, 0x80000000, 0x7F800000, 0xFF800000),
    8: (
        0x7FF8000000000001,
        0xFFF0000000000001,
        0x7FF4DEADBEEF0000,
        0x8000000000000000,
        0x7FF0000000000000,
        0xFFF0000000000000,
    ),
}


@dataclasses.dataclass
class Record:
    """A plain dataclass for object graphs (module level, so plain pickle can find it)."""

    name: str
    payload: Any


def _with_order(code: str, order: str) -> np.dtype[Any]:
    dtype = np.dtype(code)
    return dtype if dtype.itemsize == 1 else np.dtype(f"{order}{dtype.str[1:]}")


def numeric_dtypes(*, byte_orders: Sequence[str] = BYTE_ORDERS) -> st.SearchStrategy[np.dtype[Any]]:
    """bool and every integer, float (float16 to long double) and complex dtype, in both orders."""
    codes = st.sampled_from(("?", *_INTEGER_CODES, *_FLOAT_CODES, *_COMPLEX_CODES))
    return st.builds(_with_order, codes, st.sampled_from(tuple(byte_orders)))


def _datetime_dtype(kind: str, unit: str, order: str) -> np.dtype[Any]:
    return np.dtype(f"{order}{kind}8[{unit}]")


def scalar_dtypes(*, byte_orders: Sequence[str] = BYTE_ORDERS) -> st.SearchStrategy[np.dtype[Any]]:
    """Every non-structured dtype an archive can extract: numbers, datetimes, bytes, unicode."""
    orders = st.sampled_from(tuple(byte_orders))
    datetimes = st.builds(
        _datetime_dtype, st.sampled_from(("M", "m")), st.sampled_from(DATETIME_UNITS), orders
    )
    fixed_bytes = st.integers(1, 8).map(lambda n: np.dtype(f"S{n}"))
    unicode = st.builds(lambda n, order: np.dtype(f"{order}U{n}"), st.integers(1, 5), orders)
    return st.one_of(numeric_dtypes(byte_orders=byte_orders), datetimes, fixed_bytes, unicode)


def _field_names(count: int) -> list[str]:
    return [f"f{i}" for i in range(count)]


@st.composite
def structured_dtypes(
    draw: st.DrawFn, *, max_fields: int = 4, max_depth: int = 2, byte_orders: Sequence[str] = BYTE_ORDERS
) -> np.dtype[Any]:
    """Structured dtypes: packed or aligned, fields of any scalar dtype, subarrays and nesting."""
    count = draw(st.integers(1, max_fields))
    fields: list[tuple[Any, ...]] = []
    for name in _field_names(count):
        if max_depth > 1 and draw(st.integers(0, 4)) == 0:
            field_dtype = draw(
                structured_dtypes(
                    max_fields=max(max_fields - 1, 1), max_depth=max_depth - 1, byte_orders=byte_orders
                )
            )
        else:
            field_dtype = draw(scalar_dtypes(byte_orders=byte_orders))
        subarray = draw(
            st.one_of(st.just(()), st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple))
        )
        fields.append((name, field_dtype, subarray) if subarray else (name, field_dtype))
    return np.dtype(fields, align=draw(st.booleans()))


def dtypes(*, byte_orders: Sequence[str] = BYTE_ORDERS) -> st.SearchStrategy[np.dtype[Any]]:
    """Scalar dtypes (most of the time) and structured ones."""
    scalar = scalar_dtypes(byte_orders=byte_orders)
    return st.one_of(scalar, scalar, scalar, structured_dtypes(byte_orders=byte_orders))


def array_shapes(
    *, min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 5
) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes of ``min_dims`` (0-d by default) to ``max_dims`` dimensions, empty ones included."""
    sides = st.integers(min_side, max_side)
    return st.lists(sides, min_size=min_dims, max_size=max_dims).map(tuple)


# ---- values -----------------------------------------------------------------------------------


def _leaves(array: NDArray) -> list[NDArray]:
    """Writable views of every non-structured part of ``array`` (complex split in real/imag)."""
    if array.dtype.names is not None:
        return [leaf for name in array.dtype.names for leaf in _leaves(array[name])]
    if array.dtype.kind == "c":
        return [array.real, array.imag]
    return [array]


def _make_valid(leaf: NDArray, rng: np.random.Generator) -> None:
    """Turn random bytes into values of ``leaf``'s dtype that numpy accepts, in place."""
    if leaf.size == 0:
        return
    kind = leaf.dtype.kind
    if kind == "b":
        leaf[...] = np.array(leaf).view(np.uint8) & 1
    elif kind == "U":
        characters = leaf.dtype.itemsize // 4
        order = "<" if leaf.dtype.byteorder in "<=|" else ">"
        codes = np.frombuffer(np.array(leaf).tobytes(), dtype=f"{order}u4") % 0x110000
        leaf[...] = codes.astype(f"{order}u4").view(f"{order}U{characters}").reshape(leaf.shape)
    elif kind == "f" and leaf.dtype.itemsize in _SPECIAL_FLOAT_BITS:
        patterns = _SPECIAL_FLOAT_BITS[leaf.dtype.itemsize]
        specials = np.array(patterns, dtype=f"u{leaf.dtype.itemsize}").view(f"f{leaf.dtype.itemsize}")
        count = int(rng.integers(0, min(leaf.size, len(patterns)) + 1))
        positions = rng.choice(leaf.size, size=count, replace=False)
        chosen = specials[rng.integers(0, len(patterns), size=count)].astype(leaf.dtype)
        # A byte-swapping cast copies bits, so payloads and signalling NaNs survive it.
        if leaf.ndim == 0:
            if count:
                leaf[()] = chosen[0]
        else:
            leaf[np.unravel_index(positions, leaf.shape)] = chosen


def random_values(shape: tuple[int, ...], dtype: np.dtype[Any], seed: int, fill: str = "random") -> NDArray:
    """A C-ordered array of random valid values (NaN payloads and all), or zeros."""
    rng = np.random.default_rng(seed)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = bytes(nbytes) if fill == "zeros" else rng.bytes(nbytes)
    values: NDArray = np.frombuffer(raw, dtype=np.uint8).view(dtype).reshape(shape).copy()
    if fill != "zeros":
        for leaf in _leaves(values):
            _make_valid(leaf, rng)
    return values


@st.composite
def arrays(
    draw: st.DrawFn,
    dtype: np.dtype[Any] | st.SearchStrategy[np.dtype[Any]] | None = None,
    *,
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
    layouts: Sequence[str] = ("C", "F", "strided"),
) -> NDArray:
    """Arrays of any dtype: C- or F-ordered, or non-contiguous views (steps, negative ones too).

    ``dtype`` and ``shape`` are fixed values or strategies (default :func:`dtypes` and
    :func:`array_shapes`). A ``'strided'`` layout slices a larger array with steps.
    """
    if dtype is None:
        dtype = dtypes()
    chosen_dtype = draw(dtype) if isinstance(dtype, st.SearchStrategy) else np.dtype(dtype)
    if shape is None:
        shape = array_shapes()
    chosen_shape = draw(shape) if isinstance(shape, st.SearchStrategy) else tuple(shape)
    layout = draw(st.sampled_from(tuple(layouts)))
    seed = draw(st.integers(0, 2**32 - 1))
    fill = draw(st.sampled_from(("random", "random", "random", "zeros")))
    if layout == "strided" and chosen_shape:
        steps = draw(
            st.lists(
                st.sampled_from((1, 2, 3, -1, -2)), min_size=len(chosen_shape), max_size=len(chosen_shape)
            )
        )
        base_shape = tuple(n * abs(step) + 1 for n, step in zip(chosen_shape, steps, strict=True))
        base = random_values(base_shape, chosen_dtype, seed, fill)
        view = base[
            tuple(
                slice(None, n * step, step) if step > 0 else slice(None, None, step)
                for n, step in zip(chosen_shape, steps, strict=True)
            )
        ]
        # Negative steps start from the end: trim to the requested shape.
        view = view[tuple(slice(0, n) for n in chosen_shape)]
        return view
    values = random_values(chosen_shape, chosen_dtype, seed, fill)
    return np.asfortranarray(values) if layout == "F" and values.ndim else values


def masked_arrays(
    dtype: np.dtype[Any] | st.SearchStrategy[np.dtype[Any]] | None = None,
    *,
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
) -> st.SearchStrategy[np.ma.MaskedArray[Any, Any]]:
    """Masked arrays of numeric dtypes: a random mask (or none), hard or soft."""
    return st.builds(
        _masked,
        arrays(numeric_dtypes() if dtype is None else dtype, shape=shape, layouts=("C", "F")),
        st.integers(0, 2**32 - 1),
        st.sampled_from(("random", "none", "all")),
        st.booleans(),
    )


def _masked(data: NDArray, seed: int, mask_kind: str, hard: bool) -> np.ma.MaskedArray[Any, Any]:
    if mask_kind == "none":
        mask: Any = np.ma.nomask
    elif mask_kind == "all":
        mask = np.ones(data.shape, dtype=bool)
    else:
        mask = np.random.default_rng(seed).integers(0, 2, size=data.shape).astype(bool)
    # An explicit fill value of the array's own dtype: numpy's defaults (999999 for integers)
    # overflow small integer types and come back changed even through plain pickle.
    fill: Any = data.reshape(-1)[0] if data.size else np.zeros((), dtype=data.dtype)[()]
    return np.ma.MaskedArray(data, mask=mask, fill_value=fill, hard_mask=hard)


def numpy_scalars(dtype: st.SearchStrategy[np.dtype[Any]] | None = None) -> st.SearchStrategy[Any]:
    """numpy scalars (``np.float16``, ``np.datetime64``, ``np.void``, ...), NaN payloads included."""
    return arrays(dtypes() if dtype is None else dtype, shape=st.just(()), layouts=("C",)).map(
        lambda a: a[()]
    )


def hashable_scalars() -> st.SearchStrategy[Any]:
    """Python scalars that can go in sets and be dict keys."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.binary(max_size=8),
    )


def python_scalars() -> st.SearchStrategy[Any]:
    """Python scalars: None, bool, int (big ones too), float (NaN too), complex, str, bytes."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.complex_numbers(),
        st.text(max_size=16),
        st.binary(max_size=16),
    )


def _object_array(items: list[Any]) -> NDArray:
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def object_arrays(items: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[NDArray]:
    """1-D object arrays whose elements are ``items`` (default: arrays)."""
    return st.lists(arrays() if items is None else items, min_size=0, max_size=3).map(_object_array)


@st.composite
def object_graphs(
    draw: st.DrawFn,
    dtype: st.SearchStrategy[np.dtype[Any]] | None = None,
    *,
    shape: st.SearchStrategy[tuple[int, ...]] | None = None,
    masked_dtype: st.SearchStrategy[np.dtype[Any]] | None = None,
    max_leaves: int = 10,
) -> Any:
    """Nested dicts, lists, tuples, sets and :class:`Record` s of scalars, arrays and more.

    Leaves: Python and numpy scalars, arrays (of ``dtype`` and ``shape`` strategies, default
    :func:`dtypes` and :func:`array_shapes`), masked arrays (of ``masked_dtype``, default
    :func:`numeric_dtypes`, and ``shape``), object
    arrays holding arrays, sets. A small pool of arrays is drawn first and leaves pick from it,
    so the same array object often appears several times in one graph (a faithful load gives
    back one object).
    """
    array_strategy = arrays(dtype, shape=shape)
    pool = draw(st.lists(array_strategy, min_size=1, max_size=3))
    # Index into the pool rather than sampled_from(pool): that strategy's repr holds every array.
    shared = st.integers(0, len(pool) - 1).map(pool.__getitem__)
    leaves = st.one_of(
        python_scalars(),
        numpy_scalars(),
        shared,
        shared,
        array_strategy,
        masked_arrays(masked_dtype, shape=shape),
        object_arrays(st.one_of(shared, array_strategy)),
        st.sets(hashable_scalars(), max_size=4),
        st.frozensets(hashable_scalars(), max_size=4),
    )
    tree = st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.tuples(children, children),
            st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), children, max_size=4),
            st.builds(Record, st.text(max_size=6), children),
        ),
        max_leaves=max_leaves,
    )
    return draw(tree)
