"""Packs: many mid-size arrays of one dtype stored end to end in one 1-D Zarr array.

Creating a Zarr array costs about a millisecond, so 2,000 arrays of 256 KiB must not cost 2,000
of them. A pack concatenates the memory of its members (each in its own C or F order); the
archive's ``refs`` give each member's element offset, shape and order.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from zoblib.archive.chunks import byte_view, codec_view_dtype, encode_in_threads, raw_pieces, storage_order
from zoblib.archive.compression import tuned_codec
from zoblib.archive.containers import ContainerWriter
from zoblib.archive.containers.base import store_node
from zoblib.archive.dtypes import dtype_to_json
from zoblib.archive.hashlane import Digesting
from zoblib.archive.integrity import with_checksum
from zoblib.archive.nodes import ArrayNode, choose_chunk_shape
from zoblib.hashing.algorithms import HashObject

if TYPE_CHECKING:
    from zoblib.archive.writer import WriteOptions

#: Largest pack: bounds what a plain-zarr reader of one uncompressed pack loads at once.
PACK_MAX_NBYTES = 256 << 20


@dataclass(frozen=True)
class PackMember:
    index: int  # position in the archive's refs
    offset: int  # in elements, from the start of the pack
    order: str


@dataclass
class Pack:
    dtype: np.dtype[Any]
    members: list[PackMember] = field(default_factory=list)
    size: int = 0  # elements


def plan_packs(
    arrays: Sequence[np.ndarray[Any, Any]], indices: Sequence[int], options: WriteOptions
) -> list[Pack]:
    """Group arrays by dtype into packs of at most :data:`PACK_MAX_NBYTES` each."""
    open_packs: dict[np.dtype[Any], Pack] = {}
    packs: list[Pack] = []
    for array, index in zip(arrays, indices, strict=True):
        pack = open_packs.get(array.dtype)
        if pack is None or (pack.size + array.size) * array.dtype.itemsize > PACK_MAX_NBYTES:
            pack = open_packs[array.dtype] = Pack(array.dtype)
            packs.append(pack)
        pack.members.append(PackMember(index, pack.size, storage_order(array)))
        pack.size += array.size
    return packs


def write_pack(
    container: ContainerWriter,
    path: str,
    pack: Pack,
    arrays: Sequence[np.ndarray[Any, Any]],
    names: Sequence[str],
    options: WriteOptions,
    digests: Mapping[int, HashObject] | None = None,
) -> ArrayNode:
    """Store ``pack`` as the 1-D array node ``path`` and return the node.

    The node's attributes index its members (name, offset, shape, dtype, order), so that a
    reader without zoblib can cut each array out of the pack. ``digests`` (by array index, for
    an uncompressed pack with checksums) are fed their member's bytes as they are written.
    """
    target = None if options.codec is None else options.chunk_nbytes
    shape = (pack.size,)
    node = ArrayNode(
        path,
        pack.dtype,
        shape,
        choose_chunk_shape(shape, pack.dtype.itemsize, "C", target),
        "C",
        options.codec,
        options.checksum,
        attributes={"members": [_member_entry(m, arrays[m.index], names[m.index]) for m in pack.members]},
    )
    if options.adaptive and node.codec is not None:
        first = arrays[pack.members[0].index]
        sample = _flat_elements(first, pack.members[0].order)[: node.chunk_shape[0]]
        node = dataclasses.replace(
            node, codec=tuned_codec(node.codec, _codec_words(np.ascontiguousarray(sample)))
        )
    return store_node(container, node, PackData(node, pack, arrays, digests or {}))


def _member_entry(member: PackMember, array: np.ndarray[Any, Any], name: str) -> dict[str, Any]:
    return {
        "name": name,
        "offset": member.offset,
        "shape": list(array.shape),
        "dtype": dtype_to_json(array.dtype),
        "order": member.order,
    }


class PackData:
    """A pack's members as the contents of its node (see ``containers.base.NodeData``)."""

    def __init__(
        self,
        node: ArrayNode,
        pack: Pack,
        arrays: Sequence[np.ndarray[Any, Any]],
        digests: Mapping[int, HashObject],
    ) -> None:
        self.node = node
        self.members = [(arrays[m.index], m.order, m.offset) for m in pack.members]
        itemsize = node.dtype.itemsize
        self.digests = [
            Digesting(m.offset * itemsize, (m.offset + arrays[m.index].size) * itemsize, digests[m.index])
            for m in pack.members
            if m.index in digests
        ]

    def encoded_chunks(self) -> Iterator[tuple[tuple[int, ...], Iterable[memoryview]]]:
        node = self.node
        if node.codec is None:
            pieces: Iterator[memoryview] = itertools.chain.from_iterable(
                raw_pieces(a, order) for a, order, _ in self.members
            )
            yield (0,), with_checksum(pieces, self.digests) if node.checksum else pieces
            return
        yield from _encoded_pack_chunks(node, [(a, order) for a, order, _ in self.members])

    def blocks(self) -> Iterator[tuple[tuple[slice, ...], np.ndarray[Any, Any]]]:
        for array, order, offset in self.members:
            yield (slice(offset, offset + array.size),), _flat_elements(array, order)


def _flat_elements(array: np.ndarray[Any, Any], order: str) -> np.ndarray[Any, Any]:
    contiguous = array.flags.f_contiguous if order == "F" else array.flags.c_contiguous
    source = array if contiguous else np.ascontiguousarray(array)
    return byte_view(source, order if contiguous else "C").view(array.dtype)


def _encoded_pack_chunks(
    node: ArrayNode, members: Sequence[tuple[np.ndarray[Any, Any], str]]
) -> Iterator[tuple[tuple[int, ...], list[memoryview]]]:
    yield from encode_in_threads(node, _pack_chunks(node, members))


def _pack_chunks(
    node: ArrayNode, members: Sequence[tuple[np.ndarray[Any, Any], str]]
) -> Iterator[tuple[tuple[int, ...], np.ndarray[Any, Any]]]:
    """The pack's chunks, each a new buffer (they are encoded concurrently)."""
    chunk_len = node.chunk_shape[0]
    buffer = np.zeros(chunk_len, dtype=node.dtype)
    filled = 0
    number = 0
    for array, order in members:
        flat = _flat_elements(array, order)
        start = 0
        while start < flat.size:
            take = min(chunk_len - filled, flat.size - start)
            buffer[filled : filled + take] = flat[start : start + take]
            filled += take
            start += take
            if filled == chunk_len:
                yield (number,), _codec_words(buffer)
                buffer = np.zeros(chunk_len, dtype=node.dtype)
                number += 1
                filled = 0
    if filled:
        buffer[filled:] = np.zeros(1, dtype=node.dtype)
        yield (number,), _codec_words(buffer)


def _codec_words(buffer: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return byte_view(buffer, "C").view(codec_view_dtype(buffer.dtype))
