"""Fortran-ordered nodes in HDF5, which stores C order only (the logical layout).

Writing never copies a whole array: a compressed F node's chunks are cut from its blocks and
made C-contiguous one chunk at a time; an uncompressed one is cut from its F-order byte stream
into *band* chunks. Band chunks (full extent of the first axes, part of the next, 1 along the
rest), visited in F order of their grid, each hold one run of consecutive F-order bytes, so
its F-order bytes can be read back a chunk at a time (``band_spans``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from zoblib.archive.chunks import chunk_region
from zoblib.archive.nodes import DEFAULT_CHUNK_NBYTES, ArrayNode, choose_chunk_shape

Region = tuple[slice, ...]


def raw_items(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """Items as opaque words of ``dtype``'s size: copies keep every byte (struct padding too)."""
    return np.dtype((np.void, dtype.itemsize))


def c_order_chunks(
    node: ArrayNode, blocks: Iterable[tuple[Region, np.ndarray[Any, Any]]]
) -> Iterator[tuple[tuple[int, ...], np.ndarray[Any, Any]]]:
    """Every chunk of ``node``'s grid as a new C-contiguous array of the full chunk shape
    (edges zero-padded), put together from ``blocks`` that cover the node (in any cut).

    A chunk is yielded as soon as the blocks have filled it, so only the chunks a block
    straddles wait in memory.
    """
    items = raw_items(node.dtype)
    pending: dict[tuple[int, ...], tuple[np.ndarray[Any, Any], int]] = {}
    for region, values in blocks:
        values = values.view(items) if values.dtype != items else values
        spans = [range(s.start // c, -(-s.stop // c)) for s, c in zip(region, node.chunk_shape, strict=True)]
        for index in itertools.product(*spans):
            chunk_part = chunk_region(node, index)
            overlap = tuple(
                slice(max(a.start, b.start), min(a.stop, b.stop))
                for a, b in zip(region, chunk_part, strict=True)
            )
            count = math.prod(s.stop - s.start for s in overlap)
            if not count:
                continue
            buffer, filled = (
                pending.pop(index) if index in pending else (np.zeros(node.chunk_shape, items), 0)
            )
            inside = tuple(
                slice(o.start - c.start, o.stop - c.start) for o, c in zip(overlap, chunk_part, strict=True)
            )
            source = tuple(
                slice(o.start - r.start, o.stop - r.start) for o, r in zip(overlap, region, strict=True)
            )
            buffer[inside] = values[source]
            filled += count
            if filled == math.prod(s.stop - s.start for s in chunk_part):
                yield index, buffer
            else:
                pending[index] = (buffer, filled)
    if pending:
        raise RuntimeError(f"{node.path}: the node's blocks leave chunks {sorted(pending)[:3]} unfilled")


def band_chunks(node: ArrayNode) -> tuple[int, ...]:
    """The band chunk shape zoblib writes an uncompressed F node in (about 4 MiB each)."""
    return choose_chunk_shape(node.shape, node.dtype.itemsize, "F", DEFAULT_CHUNK_NBYTES)


def band_grid_in_f_order(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """The band grid's chunk origins in F order of the grid: the order of their F-order bytes."""
    grid = [-(-n // c) for n, c in zip(shape, chunks, strict=True)]
    for reversed_index in np.ndindex(*grid[::-1]):
        yield tuple(i * c for i, c in zip(reversed_index[::-1], chunks, strict=True))


def band_extent(shape: tuple[int, ...], chunks: tuple[int, ...], origin: tuple[int, ...]) -> tuple[int, ...]:
    """The part of the band chunk at ``origin`` that lies inside the array."""
    return tuple(min(c, n - o) for c, n, o in zip(chunks, shape, origin, strict=True))


class ByteStream:
    """Bytes handed out as pieces, taken in runs of any length (views where a run fits a piece)."""

    def __init__(self, pieces: Iterable[memoryview]) -> None:
        self._pieces = iter(pieces)
        self._current = memoryview(b"")

    def take(self, nbytes: int) -> memoryview:
        """The next ``nbytes`` bytes; ``ValueError`` if the stream ends before."""
        if len(self._current) >= nbytes:
            run, self._current = self._current[:nbytes], self._current[nbytes:]
            return run
        gathered = bytearray(self._current)
        while len(gathered) < nbytes:
            piece = next(self._pieces, None)
            if piece is None:
                raise ValueError(f"the node's bytes end {nbytes - len(gathered)} bytes early")
            piece = memoryview(piece).cast("B")
            need = nbytes - len(gathered)
            gathered += piece[:need]
            self._current = piece[need:]
        return memoryview(gathered)

    def rest(self) -> bytes:
        """Every byte not taken yet (an uncompressed chunk's trailing CRC-32C)."""
        return bytes(self._current) + b"".join(bytes(piece) for piece in self._pieces)


def bands_from_f_stream(
    node: ArrayNode, chunks: tuple[int, ...], stream: ByteStream
) -> Iterator[tuple[tuple[int, ...], np.ndarray[Any, Any]]]:
    """The band chunks of an F node whose F-order bytes ``stream`` gives: ``(origin, C-order
    chunk of the full chunk shape)``, one new chunk at a time, edges zero-padded."""
    items = raw_items(node.dtype)
    for origin in band_grid_in_f_order(node.shape, chunks):
        extent = band_extent(node.shape, chunks, origin)
        run = stream.take(math.prod(extent) * node.dtype.itemsize)
        values = np.frombuffer(run, dtype=items).reshape(extent, order="F")
        chunk = np.zeros(chunks, dtype=items)
        chunk[tuple(slice(0, e) for e in extent)] = values
        yield origin, chunk


def band_spans(
    shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int, start: int, stop: int
) -> Iterator[tuple[tuple[int, ...], tuple[int, ...], int]]:
    """For bytes ``[start, stop)`` of the F-order bytes of an array stored in band ``chunks``:
    every chunk they touch, as ``(origin, extent inside the array, its first byte there)``."""
    total = math.prod(shape)
    element = start // itemsize
    while element < total and element * itemsize < stop:
        position = np.unravel_index(element, shape, order="F")
        origin = tuple((int(p) // c) * c for p, c in zip(position, chunks, strict=True))
        extent = band_extent(shape, chunks, origin)
        first = int(np.ravel_multi_index(origin, shape, order="F"))
        yield origin, extent, first * itemsize
        element = first + math.prod(extent)
