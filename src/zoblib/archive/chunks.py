"""Cutting arrays into stored chunks and putting decoded chunks back together.

Writing never copies a big array whole: uncompressed single-chunk arrays stream their own memory
in slices, and compressed arrays are encoded one chunk (a few MiB) at a time.
"""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from zoblib.archive.bounded import decode_bounded
from zoblib.archive.hashlane import Digesting
from zoblib.archive.integrity import (
    ChecksumMismatch,
    checksum,
    checksum_bytes,
    split_checksum,
    with_checksum,
)
from zoblib.archive.nodes import ArrayNode

Buffer = memoryview
#: Size of the slices an uncompressed array is written and read in: small enough that the
#: checksum thread finds each one still in the CPU's cache (8 MiB: a checked 1 GiB load took
#: 105 ms here, 123 ms with 32 MiB slices).
STREAM_PIECE_NBYTES = 8 << 20


def storage_order(array: np.ndarray[Any, Any]) -> str:
    """'F' for arrays that are Fortran- but not C-contiguous, else 'C'."""
    return "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"


def byte_view(array: np.ndarray[Any, Any], order: str) -> np.ndarray[Any, Any]:
    """A flat uint8 view of a contiguous ``array``'s memory in ``order`` (no copy)."""
    flat = array.T.reshape(-1) if order == "F" else array.reshape(-1)
    return flat.view(np.uint8)


def raw_pieces(array: np.ndarray[Any, Any], order: str) -> Iterator[Buffer]:
    """The bytes of ``array`` in ``order`` as a stream of slices of bounded size.

    A contiguous array yields views of its own memory; any other is copied one slab at a time.
    """
    contiguous = array.flags.f_contiguous if order == "F" else array.flags.c_contiguous
    if contiguous:
        data = byte_view(array, order)
        for start in range(0, data.size, STREAM_PIECE_NBYTES):
            yield data[start : start + STREAM_PIECE_NBYTES].data
        return
    rows = array.reshape(1) if array.ndim == 0 else array
    row_nbytes = max(math.prod(rows.shape[1:]) * rows.dtype.itemsize, 1)
    step = max(STREAM_PIECE_NBYTES // row_nbytes, 1)
    for start in range(0, rows.shape[0], step):
        yield byte_view(np.ascontiguousarray(rows[start : start + step]), "C").data


def keep_array(selection: tuple[slice, ...]) -> Any:
    """``selection`` with an Ellipsis, so that indexing a 0-d array gives an array, not a scalar."""
    return (*selection, Ellipsis)


def chunk_region(node: ArrayNode, index: tuple[int, ...]) -> tuple[slice, ...]:
    """The part of the array that chunk ``index`` covers."""
    return tuple(
        slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(index, node.chunk_shape, node.shape, strict=True)
    )


def chunk_array(array: np.ndarray[Any, Any], node: ArrayNode, index: tuple[int, ...]) -> Any:
    """The chunk ``index`` of ``array`` in storage order, padded to the full chunk shape."""
    part = array[keep_array(chunk_region(node, index))]
    if part.shape != node.chunk_shape:
        padded = np.zeros(node.chunk_shape, dtype=array.dtype, order=_order(node.order))
        padded[tuple(slice(0, n) for n in part.shape)] = part
        part = padded
    part = np.asfortranarray(part) if node.order == "F" else np.ascontiguousarray(part)
    return byte_view(part, node.order).view(codec_view_dtype(array.dtype))


def _order(order: str) -> Literal["C", "F"]:
    return "F" if order == "F" else "C"


#: Arrays from this size are read into page-aligned memory (see :func:`empty_array`).
ALIGNED_FROM_NBYTES = 1 << 20
PAGE_BYTES = 4096


def empty_array(shape: tuple[int, ...], dtype: np.dtype[Any], order: str) -> np.ndarray[Any, Any]:
    """An uninitialised array of ``shape`` in memory ``order``; page-aligned from 1 MiB.

    The kernel copies a file's cached pages into memory up to 3x slower when the destination
    sits 16 bytes past a 64-byte boundary of a page-aligned source, which is where ``malloc``
    puts a big ``np.empty`` and where an archive keeps its raw arrays (measured on 1 GiB: 393 ms
    against 120 ms aligned; ``benchmarks/README.md``). A big array is therefore a view of a
    slightly larger buffer, starting on a page; it does not own its data (``.base`` is that
    buffer), as for any view.
    """
    numpy_order = _order(order)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < ALIGNED_FROM_NBYTES or dtype.hasobject or dtype.subdtype is not None:
        out: np.ndarray[Any, Any] = np.empty(shape, dtype=dtype, order=numpy_order)
        return out
    buffer = np.empty(nbytes + PAGE_BYTES, dtype=np.uint8)
    start = -buffer.ctypes.data % PAGE_BYTES
    flat = buffer[start : start + nbytes].view(dtype)
    return flat.reshape(shape[::-1]).T if numpy_order == "F" else flat.reshape(shape)


def codec_view_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    # Codecs see items as opaque words of the dtype's size, so Blosc shuffles by item.
    return np.dtype(f"V{dtype.itemsize}") if dtype.itemsize > 1 else np.dtype(np.uint8)


def encoded_chunks(
    array: np.ndarray[Any, Any], node: ArrayNode, digest: Digesting | None = None
) -> Iterator[tuple[tuple[int, ...], Sequence[Buffer] | Iterator[Buffer]]]:
    """Every chunk of ``array`` as stored: ``(grid index, byte pieces)``.

    ``digest`` (for an uncompressed node with checksums) is fed the stored bytes as they go.
    """
    if node.codec is None and node.is_single_chunk:
        for index in node.chunk_indices():
            pieces = raw_pieces(array, node.order)
            digests = () if digest is None else (digest,)
            yield index, with_checksum(pieces, digests) if node.checksum else pieces
        return
    yield from encode_in_threads(node, ((i, chunk_array(array, node, i)) for i in node.chunk_indices()))


def encode_in_threads(
    node: ArrayNode, chunks: Iterable[tuple[tuple[int, ...], Any]]
) -> Iterator[tuple[tuple[int, ...], list[Buffer]]]:
    """Encode chunks on one thread per core, in order, with a bounded number in flight.

    The codecs and the checksum release the GIL, so a dump compresses on every core.
    """
    workers = max(os.cpu_count() or 1, 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zoblib-encode") as pool:
        in_flight: collections.deque[tuple[tuple[int, ...], Future[list[Buffer]]]] = collections.deque()
        for index, chunk in chunks:
            in_flight.append((index, pool.submit(encode_chunk, node, chunk)))
            if len(in_flight) > 2 * workers:
                done_index, future = in_flight.popleft()
                yield done_index, future.result()
        while in_flight:
            done_index, future = in_flight.popleft()
            yield done_index, future.result()


def encode_chunk(node: ArrayNode, chunk: Any) -> list[memoryview]:
    """The stored pieces of one chunk (given as the codec's view of its bytes)."""
    data = memoryview(chunk if node.codec is None else node.codec.encode(chunk)).cast("B")
    if not node.checksum:
        return [data]
    return [data, memoryview(checksum_bytes(checksum(data)))]


def decode_chunk(node: ArrayNode, index: tuple[int, ...], stored: Any) -> np.ndarray[Any, Any]:
    """A stored chunk (payload, then its 4-byte CRC-32C) as an array of the full chunk shape.

    Raises
    ------
    ChecksumMismatch
        If the chunk's bytes do not match its own checksum or the one the root record holds
        for this place.
    ValueError
        If the chunk cannot be decoded to exactly one chunk's bytes.
    """
    payload = stored
    if node.checksum:
        payload, trailing = split_checksum(stored)
        computed = checksum(payload)
        if computed != trailing:
            raise ChecksumMismatch("the chunk's CRC-32C does not match its bytes")
        check_placed(node, index, computed)
    return decode_payload(node, payload)


def check_placed(node: ArrayNode, index: tuple[int, ...], computed: int) -> None:
    """Raise ``ChecksumMismatch`` if the root record holds another checksum for chunk ``index``."""
    expected = node.expected_checksum(index)
    if expected is not None and expected != computed:
        raise ChecksumMismatch(
            f"chunk {index} holds valid bytes of some chunk, but not the ones written at this place "
            "(chunks swapped, copied or replaced)"
        )


def decode_payload(node: ArrayNode, payload: Any) -> np.ndarray[Any, Any]:
    """A chunk's payload (its codec's output, or raw bytes) as an array of the full chunk shape.

    Decoding stops at one chunk's bytes, whatever the payload claims (no decompression bombs).
    """
    expected = node.chunk_nbytes
    raw = payload if node.codec is None else decode_bounded(node.codec, payload, expected)
    flat = np.frombuffer(raw, dtype=np.uint8)
    if flat.size != expected:
        raise ValueError(f"chunk holds {flat.size} bytes, expected {expected}")
    return flat.view(node.dtype).reshape(node.chunk_shape, order=node.order)  # type: ignore[call-overload,no-any-return]


class ArrayData:
    """One numpy array as the contents of its node (see ``containers.base.NodeData``)."""

    def __init__(self, array: np.ndarray[Any, Any], node: ArrayNode, digest: Digesting | None = None) -> None:
        self.array = array
        self.node = node
        self.digest = digest

    def encoded_chunks(self) -> Iterator[tuple[tuple[int, ...], Iterable[Buffer]]]:
        return encoded_chunks(self.array, self.node, self.digest)

    def blocks(self) -> Iterator[tuple[tuple[slice, ...], np.ndarray[Any, Any]]]:
        node = self.node
        if node.is_single_chunk and node.shape:
            # Bounded slabs along the slowest axis of the stored order.
            axis = 0 if node.order == "C" else len(node.shape) - 1
            slab = max(node.nbytes // max(node.shape[axis], 1), 1)
            step = max(STREAM_PIECE_NBYTES // slab, 1)
            for start in range(0, node.shape[axis], step):
                bounds = [slice(0, n) for n in node.shape]
                bounds[axis] = slice(start, min(start + step, node.shape[axis]))
                yield tuple(bounds), self.array[tuple(bounds)]
            return
        for index in node.chunk_indices():
            region = chunk_region(node, index)
            yield region, self.array[keep_array(region)]
