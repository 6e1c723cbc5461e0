"""``LazyArray``: a compressed array read chunk by chunk, only where it is indexed."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from zoblib.archive.chunks import empty_array
from zoblib.archive.nodes import ArrayNode

ChunkReader = Callable[[tuple[int, ...]], Any]


class ChunkGrid:
    """Reads selections of one chunked node, decoding only the chunks they touch."""

    def __init__(self, node: ArrayNode, read_chunk: ChunkReader) -> None:
        self.node = node
        self.read_chunk = read_chunk  # grid index -> decoded chunk of the full chunk shape

    def read(
        self, selection: tuple[slice, ...], out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        """The values of ``selection`` (ascending slices, one per dimension), into ``out``."""
        ranges, out_shape, out = selection_output(self.node, selection, out)
        if out.size == 0:
            return out
        per_axis = [
            _touched_chunks(start, step, length, chunk)
            for (start, _, step), length, chunk in zip(ranges, out_shape, self.node.chunk_shape, strict=True)
        ]
        for combo in itertools.product(*per_axis):
            index = tuple(c for c, _, _ in combo)
            chunk = self.read_chunk(index)
            out[tuple(o for _, o, _ in combo)] = chunk[tuple(i for _, _, i in combo)]
        return out


def selection_output(
    node: ArrayNode, selection: tuple[slice, ...], out: np.ndarray[Any, Any] | None
) -> tuple[list[tuple[int, int, int]], tuple[int, ...], np.ndarray[Any, Any]]:
    """For reading ``selection`` of ``node``: its ``(start, stop, step)`` on each axis, the
    shape of its values, and the array they go into (``out``, or a new one of that shape)."""
    ranges = [s.indices(n) for s, n in zip(selection, node.shape, strict=True)]
    out_shape = tuple(len(range(*r)) for r in ranges)
    if out is None:
        out = empty_array(out_shape, node.dtype, node.order)
    return ranges, out_shape, out


def _touched_chunks(start: int, step: int, length: int, chunk: int) -> list[tuple[int, slice, slice]]:
    """For one axis: (chunk index, output slice, slice inside the chunk) of every touched chunk."""
    last = start + (length - 1) * step
    found = []
    for k in range(start // chunk, last // chunk + 1):
        lo, hi = k * chunk, (k + 1) * chunk
        first = max(0, -(-(lo - start) // step))
        stop = min(length, -(-(hi - start) // step))
        if first < stop:
            inner_start = start + first * step - lo
            inner_stop = start + (stop - 1) * step - lo + 1
            found.append((k, slice(first, stop), slice(inner_start, inner_stop, step)))
    return found


class LazyArray(np.lib.mixins.NDArrayOperatorsMixin):
    """A read-only array in an archive, read and decompressed only where it is indexed.

    Indexing with integers and slices reads only the chunks the selection touches; other
    indexing (masks, integer arrays) reads the whole array first. ``np.asarray``, numpy ufuncs
    and functions accept it. ``zoblib_digest`` is the content digest recorded at dump time.
    """

    def __init__(
        self,
        reader: Callable[[tuple[slice, ...]], np.ndarray[Any, Any]],
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        *,
        description: str,
        digest: str | None = None,
        origin: tuple[Any, ...] | None = None,
    ) -> None:
        self._read = reader
        self._origin = origin
        self.shape = shape
        self.dtype = dtype
        self.zoblib_digest = digest
        self._description = description

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))
    nbytes = property(lambda self: self.size * self.dtype.itemsize)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<LazyArray shape={self.shape} dtype={self.dtype} {self._description} (lazy)>"

    def read(self) -> np.ndarray[Any, Any]:
        """The whole array, read into memory."""
        values: np.ndarray[Any, Any] = self._read(tuple(slice(None) for _ in self.shape))
        return values

    def __getitem__(self, key: Any) -> Any:
        basic = _basic_selection(key, self.shape)
        if basic is None:
            return self.read()[key]
        slices, flips, drops = basic
        values = self._read(slices)
        if flips:
            values = values[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
        if drops:
            values = values[tuple(0 if d else slice(None) for d in drops)]
        return values

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        values = self.read()
        return values if dtype is None else values.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(np.asarray(x) if isinstance(x, LazyArray) else x for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(x) if isinstance(x, LazyArray) else x for x in kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return func(*_materialize(args), **_materialize(kwargs))

    def astype(self, dtype: Any) -> np.ndarray[Any, Any]:
        return self.read().astype(dtype)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by reference (archive path or URL, with its storage options, and reference
        # index), so sending a lazy array to another process sends no data; one from an
        # in-memory file travels as its values.
        if self._origin is None:
            return (np.asarray, (self.read(),))
        from zoblib.archive.reader import open_lazy_reference

        return (open_lazy_reference, self._origin)


def _materialize(value: Any) -> Any:
    if isinstance(value, LazyArray):
        return value.read()
    if isinstance(value, (list, tuple)):
        return type(value)(_materialize(v) for v in value)
    if isinstance(value, dict):
        return {k: _materialize(v) for k, v in value.items()}
    return value


def _basic_selection(
    key: Any, shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], list[bool], list[bool]] | None:
    """Ascending slices for an int/slice/Ellipsis key, with the axes to flip and to drop."""
    items = key if isinstance(key, tuple) else (key,)
    if any(
        isinstance(i, (bool, np.bool_)) or (not isinstance(i, (int, np.integer, slice)) and i is not Ellipsis)
        for i in items
    ):
        return None
    if sum(i is Ellipsis for i in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        fill = (slice(None),) * (len(shape) - len(items) + 1)
        items = items[:at] + fill + items[at + 1 :]
    if len(items) > len(shape):
        raise IndexError(f"too many indices: array is {len(shape)}-dimensional, {len(items)} given")
    items = items + (slice(None),) * (len(shape) - len(items))
    slices: list[slice] = []
    flips: list[bool] = []
    drops: list[bool] = []
    for item, n in zip(items, shape, strict=True):
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            length = len(range(start, stop, step))
            if step < 0 and length:
                start, stop, step = start + (length - 1) * step, start + 1, -step
            slices.append(slice(start, stop, step) if length else slice(0, 0, 1))
            flips.append(item.step is not None and item.step < 0 and length > 0)
            drops.append(False)
        else:
            i = int(item)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis with size {n}")
            i %= n
            slices.append(slice(i, i + 1, 1))
            flips.append(False)
            drops.append(True)
    return tuple(slices), flips if any(flips) else [], drops if any(drops) else []
