"""Counting an archive's bytes as they are written, read or checked, for ``progress=``.

The writer and the reader call these only when a :class:`~zoblib.progress.ByteCounter` was asked
for: without one they run their own loops untouched. Counts are of the values' bytes (what
``array.nbytes`` says), not of the compressed bytes stored, so that a bar's total is known
before anything is encoded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from zoblib.archive.chunks import chunk_region
from zoblib.archive.containers.base import ContainerReader, NodeData
from zoblib.archive.nodes import ArrayNode
from zoblib.progress import ByteCounter

if TYPE_CHECKING:
    from zoblib.archive.reader import ArchiveReader

#: Compressed arrays read with a bar come in slabs of about this many bytes (whole rows of chunks).
READ_SLAB_NBYTES = 32 << 20


def region_nbytes(node: ArrayNode, region: tuple[slice, ...]) -> int:
    """The bytes of ``node``'s values in ``region`` (slices with known bounds)."""
    return int(math.prod(s.stop - s.start for s in region)) * node.dtype.itemsize


class CountedData:
    """A node's contents (``containers.base.NodeData``) that count their bytes as a container
    takes them: uncompressed ones piece by piece, compressed ones chunk by chunk."""

    def __init__(self, data: NodeData, node: ArrayNode, counter: ByteCounter) -> None:
        self.data = data
        self.node = node
        self.counter = counter
        self.end = counter.done + node.nbytes  # where the count stands once the node is written

    def encoded_chunks(self) -> Iterator[tuple[tuple[int, ...], Iterable[memoryview]]]:
        node, counter = self.node, self.counter
        for index, pieces in self.data.encoded_chunks():
            if node.codec is None:
                yield index, self._counted_pieces(pieces)
            else:
                yield index, pieces
                counter.advance(region_nbytes(node, chunk_region(node, index)))
        counter.reach(self.end)

    def _counted_pieces(self, pieces: Iterable[memoryview]) -> Iterator[memoryview]:
        for piece in pieces:
            yield piece
            self.counter.advance(min(piece.nbytes, self.end - self.counter.done))

    def blocks(self) -> Iterator[tuple[tuple[slice, ...], np.ndarray[Any, Any]]]:
        for region, values in self.data.blocks():
            yield region, values
            self.counter.advance(values.nbytes)
        self.counter.reach(self.end)


def read_compressed_counted(
    container: ContainerReader, node: ArrayNode, out: np.ndarray[Any, Any], counter: ByteCounter
) -> np.ndarray[Any, Any]:
    """Read a whole compressed ``node`` into ``out`` in slabs of whole chunk rows, counting each."""
    if not node.shape:
        container.read_region(node, (), out)
        counter.advance(node.nbytes)
        return out
    row = node.chunk_shape[0]
    row_nbytes = max(node.nbytes // max(node.shape[0], 1), 1) * row
    step = max(READ_SLAB_NBYTES // row_nbytes, 1) * row
    rest = tuple(slice(0, n) for n in node.shape[1:])
    for start in range(0, node.shape[0], step):
        slab = (slice(start, min(start + step, node.shape[0])), *rest)
        container.read_region(node, slab, out[slab])
        counter.advance(region_nbytes(node, slab))
    return out


def bytes_to_read(reader: ArchiveReader, mmap_mode: str | None, verify: bool) -> int:
    """What a load reads: every node; with ``mmap_mode``, the skeleton (and with ``verify``,
    the mapped nodes it checks)."""
    if mmap_mode is None or verify:
        return sum(node.nbytes for node in reader.nodes.values())
    return reader.skeleton.nbytes


def verify_nodes(reader: ArchiveReader, counter: ByteCounter | None) -> Iterator[ArrayNode]:
    """Check every node of ``reader``, yielding each once it is found intact (``verify`` and
    ``zoblib verify``); ``counter`` counts their bytes as they are read."""
    if counter is not None:
        counter.start(sum(node.nbytes for node in reader.nodes.values()))
    for node in reader.nodes.values():
        end = 0 if counter is None else counter.done + node.nbytes
        reader.verify_node(node, counter)
        if counter is not None:
            counter.reach(end)
        yield node
