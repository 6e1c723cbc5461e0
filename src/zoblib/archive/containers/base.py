"""The container contract: where one archive's nodes and chunks live.

An archive is the same logical tree in every container: a root group with zoblib's attributes,
and array nodes made of chunks. A container only stores and finds those pieces; encoding,
layout and the pickle skeleton are the archive's business. ``ZarrStoreWriter`` and
``ZarrStoreReader`` implement the contract for Zarr v3 key/value stores (directory, ZIP);
an HDF5 container maps the same calls onto datasets.
"""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from zoblib.archive.integrity import ChecksumMismatch
from zoblib.archive.nodes import ArrayNode
from zoblib.errors import ArchiveCorruptedError, ChecksumError, ZoblibError


class ByteRange(NamedTuple):
    """Where a stored chunk's bytes lie, contiguous, in a real file."""

    path: str
    offset: int
    nbytes: int


class NodeData(Protocol):
    """The contents of one node, offered both ways: Zarr containers store encoded chunks,
    containers with codecs of their own (HDF5) take the values block by block."""

    def encoded_chunks(self) -> Iterable[tuple[tuple[int, ...], Iterable[memoryview]]]:
        """Every chunk as stored in a Zarr store: ``(grid index, byte pieces)``, checksum included."""

    def blocks(self) -> Iterable[tuple[tuple[slice, ...], np.ndarray[Any, Any]]]:
        """The node's values as ``(region, values)`` blocks that cover it, each of bounded size."""


class ContainerWriter(ABC):
    """Writes one archive aside, then publishes it under its final name in :meth:`commit`."""

    #: The container's name, as accepted by ``dump(..., format=...)``.
    format_name: ClassVar[str]

    @abstractmethod
    def write_array(self, node: ArrayNode, data: NodeData) -> list[int]:
        """Store an array node: its metadata and its contents.

        Returns the CRC-32C of every chunk's payload in grid order (empty without
        ``node.checksum``): the root record lists them, tying each chunk to its place.
        """

    def stored_node(self, node: ArrayNode) -> ArrayNode:
        """``node`` as this container records it (HDF5 adds its layout); by default ``node``."""
        return node

    @abstractmethod
    def write_root(self, attributes: Mapping[str, Any], groups: Iterable[str]) -> None:
        """Store the root group's attributes (last: it marks the archive complete)."""

    @abstractmethod
    def commit(self) -> list[str]:
        """Make the archive visible under its final name; return the paths written."""

    @abstractmethod
    def abort(self) -> None:
        """Drop everything written so far; the final name is left as it was."""


def store_node(container: ContainerWriter, node: ArrayNode, data: NodeData) -> ArrayNode:
    """Write ``node`` into ``container``; return it with the checksum of each of its chunks."""
    node = container.stored_node(node)
    checksums = container.write_array(node, data)
    if not node.checksum:
        return node
    if len(checksums) != node.chunk_count:
        raise RuntimeError(f"{node.path}: the container wrote {len(checksums)} of {node.chunk_count} chunks")
    return dataclasses.replace(node, chunk_checksums=tuple(checksums))


class ContainerReader(ABC):
    """Reads the nodes of one archive. Every read of stored bytes that a checksum covers is
    checked, except through :meth:`raw_location` (memory maps)."""

    format_name: ClassVar[str]
    #: Whether :meth:`raw_location` can give real file ranges (for ``np.memmap``).
    supports_memmap: ClassVar[bool] = False
    #: Whether the archive lives at a URL, where reads cost requests: ``load(mmap_mode=...)``
    #: then gives lazy arrays that read only what a slice touches (no memory map is possible).
    supports_ranged_reads: ClassVar[bool] = False
    #: How many pieces of a whole uncompressed node to read at once: more than one where each
    #: read is a request whose latency, not the bandwidth, bounds a lone reader (object stores).
    concurrent_reads: ClassVar[int] = 1
    #: Bytes of each of those concurrent reads.
    concurrent_read_nbytes: ClassVar[int] = 32 << 20

    def __init__(self, path: str) -> None:
        self.path = path

    @abstractmethod
    def root_attributes(self) -> dict[str, Any]:
        """The root group's attributes."""

    @abstractmethod
    def read_region(
        self, node: ArrayNode, selection: tuple[slice, ...], out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        """The values of ``selection`` (ascending slices, one per dimension), checked, into ``out``."""

    @abstractmethod
    def read_raw_into(self, node: ArrayNode, out: memoryview, offset: int) -> None:
        """For an uncompressed node: ``len(out)`` bytes of its values from byte ``offset``."""

    @abstractmethod
    def raw_checksum(self, node: ArrayNode) -> int | None:
        """For an uncompressed node: the stored CRC-32C of all its value bytes, if any."""

    def raw_location(self, node: ArrayNode) -> ByteRange | None:
        """For an uncompressed node: where its value bytes lie, contiguous, in a real file."""
        return None

    def close(self) -> None:  # noqa: B027 - most readers hold nothing open
        """Release open files."""

    def __enter__(self) -> ContainerReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LastChunks:
    """Each node's last decoded chunk, so that packed members sharing a chunk, and slices
    walking an array, decode it once; and decoding errors as zoblib's, naming the file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._last: dict[str, tuple[tuple[int, ...], np.ndarray[Any, Any]]] = {}

    def get(
        self, node: ArrayNode, index: tuple[int, ...], where: str, decode: Callable[[], np.ndarray[Any, Any]]
    ) -> np.ndarray[Any, Any]:
        """Chunk ``index`` of ``node``: the cached one, or ``decode()`` (``where`` names it in errors)."""
        cached = self._last.get(node.path)
        if cached is not None and cached[0] == index:
            return cached[1]
        try:
            chunk = decode()
        except ZoblibError:
            raise
        except ChecksumMismatch as exc:
            raise ChecksumError(self.path, f"{where} does not match its checksum: {exc}") from exc
        except (ValueError, RuntimeError, TypeError) as exc:
            raise ArchiveCorruptedError(self.path, f"{where} cannot be decoded: {exc}") from exc
        self._last[node.path] = (index, chunk)
        return chunk

    def clear(self) -> None:
        self._last.clear()


def read_exactly(fd: int, out: memoryview, offset: int, path: str) -> None:
    """``pread`` until ``out`` is full; a short file or a bad offset is damage, named by ``path``."""
    done = 0
    total = len(out)
    if offset < 0:
        raise ArchiveCorruptedError(path, f"a stored offset is invalid ({offset})")
    while done < total:
        try:
            n = os.preadv(fd, [out[done:]], offset + done)
        except OSError as exc:
            raise ArchiveCorruptedError(path, f"cannot read bytes {offset}-{offset + total}: {exc}") from exc
        if n == 0:
            raise ArchiveCorruptedError(
                path, f"the file is truncated: it ends at byte {offset + done}, expected {offset + total}"
            )
        done += n
