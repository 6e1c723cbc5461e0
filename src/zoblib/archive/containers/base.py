"""The container contract: where one archive's nodes and chunks live.

An archive is the same logical tree in every container: a root group with zoblib's attributes,
and array nodes made of chunks. A container only stores and finds those pieces; encoding,
layout and the pickle skeleton are the archive's business. ``ZarrStoreWriter`` and
``ZarrStoreReader`` implement the contract for Zarr v3 key/value stores (directory, ZIP);
an HDF5 container maps the same calls onto datasets.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, NamedTuple

from zoblib.archive.nodes import ArrayNode


class ByteRange(NamedTuple):
    """Where a stored chunk's bytes lie, contiguous, in a real file."""

    path: str
    offset: int
    nbytes: int


class ContainerWriter(ABC):
    """Writes one archive aside, then publishes it under its final name in :meth:`commit`."""

    #: The container's name, as accepted by ``dump(..., format=...)``.
    format_name: ClassVar[str]

    @abstractmethod
    def write_array(
        self, node: ArrayNode, chunks: Iterable[tuple[tuple[int, ...], Iterable[memoryview]]]
    ) -> None:
        """Store an array node: its metadata and every chunk ``(grid index, byte pieces)``."""

    @abstractmethod
    def write_root(self, attributes: Mapping[str, Any], groups: Iterable[str]) -> None:
        """Store the root group's attributes (last: it marks the archive complete)."""

    @abstractmethod
    def commit(self) -> list[str]:
        """Make the archive visible under its final name; return the paths written."""

    @abstractmethod
    def abort(self) -> None:
        """Drop everything written so far; the final name is left as it was."""


class ContainerReader(ABC):
    """Reads the pieces of one archive."""

    format_name: ClassVar[str]
    #: Whether :meth:`chunk_location` can give real file ranges (for ``np.memmap``).
    supports_memmap: ClassVar[bool] = False

    def __init__(self, path: str) -> None:
        self.path = path

    @abstractmethod
    def root_attributes(self) -> dict[str, Any]:
        """The root group's attributes."""

    @abstractmethod
    def read_chunk(self, node: ArrayNode, index: tuple[int, ...]) -> bytes:
        """The stored (encoded) bytes of one chunk."""

    @abstractmethod
    def read_chunk_into(
        self, node: ArrayNode, index: tuple[int, ...], out: memoryview, offset: int = 0
    ) -> None:
        """Read ``len(out)`` stored bytes of one chunk, from byte ``offset``, into ``out``."""

    def chunk_location(self, node: ArrayNode, index: tuple[int, ...]) -> ByteRange | None:
        """Where a chunk's stored bytes lie in a real file, if they do."""
        return None

    def close(self) -> None:  # noqa: B027 - most readers hold nothing open
        """Release open files."""

    def __enter__(self) -> ContainerReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_exactly(fd: int, out: memoryview, offset: int, path: str) -> None:
    """``pread`` until ``out`` is full; a short file raises ``EOFError`` naming ``path``."""
    done = 0
    total = len(out)
    while done < total:
        n = os.preadv(fd, [out[done:]], offset + done)
        if n == 0:
            raise EOFError(f"{path!r} ends after {offset + done} bytes, expected {offset + total}")
        done += n
