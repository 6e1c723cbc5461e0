"""Shared half of the Zarr v3 containers: nodes and chunks as keys of a key/value store.

Keys follow the Zarr v3 layout: ``zarr.json`` documents for groups and arrays, chunks under
``<node>/c/<i>/<j>``. A subclass only puts and finds the bytes of one key.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from zoblib.archive.chunks import decode_chunk
from zoblib.archive.containers.base import ByteRange, ContainerReader, ContainerWriter, LastChunks, NodeData
from zoblib.archive.guard import MAX_JSON_NBYTES, parse_json
from zoblib.archive.integrity import CHECKSUM_NBYTES
from zoblib.archive.lazy import ChunkGrid
from zoblib.archive.nodes import ArrayNode, group_metadata
from zoblib.errors import ArchiveCorruptedError, ArchiveError

ROOT_METADATA_KEY = "zarr.json"


def metadata_key(node_path: str) -> str:
    return f"{node_path}/zarr.json" if node_path else ROOT_METADATA_KEY


def encode_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


class ZarrStoreWriter(ContainerWriter):
    """Writes nodes as Zarr v3 keys through :meth:`_put`."""

    @abstractmethod
    def _put(self, key: str, pieces: Iterable[memoryview], nbytes: int, *, align: bool) -> None:
        """Store ``nbytes`` bytes given as ``pieces`` under ``key``; ``align`` for memmapping."""

    def _put_bytes(self, key: str, data: bytes) -> None:
        self._put(key, [memoryview(data)], len(data), align=False)

    def write_array(self, node: ArrayNode, data: NodeData) -> list[int]:
        raw = node.codec is None
        checksums: list[int] = []
        for index, pieces in data.encoded_chunks():
            # With checksums on, the last piece of every chunk is its CRC-32C.
            last = _LastPiece(pieces)
            if raw:
                self._put(node.chunk_key(index), last, node.stored_raw_nbytes, align=True)
            else:
                materialized = list(last)
                size = sum(len(piece) for piece in materialized)
                self._put(node.chunk_key(index), materialized, size, align=False)
            if node.checksum:
                checksums.append(int.from_bytes(last.value, "little"))
        self._put_bytes(metadata_key(node.path), encode_json(node.zarr_metadata()))
        return checksums

    def write_root(self, attributes: Mapping[str, Any], groups: Iterable[str]) -> None:
        for group in groups:
            self._put_bytes(metadata_key(group), encode_json(group_metadata()))
        self._put_bytes(ROOT_METADATA_KEY, encode_json(group_metadata(attributes)))


class _LastPiece:
    """Passes pieces through and keeps the last one (a chunk's stored checksum)."""

    def __init__(self, pieces: Iterable[memoryview]) -> None:
        self._pieces = pieces
        self.value = b""

    def __iter__(self) -> Iterator[memoryview]:
        for piece in self._pieces:
            self.value = bytes(piece) if len(piece) == CHECKSUM_NBYTES else self.value
            yield piece


class ZarrStoreReader(ContainerReader):
    """Reads nodes from Zarr v3 keys through :meth:`_locate` and :meth:`_read_range`."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._chunks = LastChunks(path)

    @abstractmethod
    def _locate(self, key: str) -> ByteRange | None:
        """Where ``key``'s bytes lie, or ``None`` if the key does not exist."""

    @abstractmethod
    def _read_range(self, where: ByteRange, out: memoryview, offset: int) -> None:
        """Fill ``out`` with the bytes of ``where`` starting at ``offset``."""

    def _require(self, key: str) -> ByteRange:
        where = self._locate(key)
        if where is None:
            raise ArchiveCorruptedError(self.path, f"the archive has no {key!r}: it is incomplete")
        return where

    def read_key(self, key: str) -> bytearray:
        where = self._require(key)
        out = bytearray(where.nbytes)
        self._read_range(where, memoryview(out), 0)
        return out

    def root_attributes(self) -> dict[str, Any]:
        if self._locate(ROOT_METADATA_KEY) is None:
            raise ArchiveError(self.path, "not a zoblib archive: it has no root zarr.json")
        where = self._require(ROOT_METADATA_KEY)
        if where.nbytes > MAX_JSON_NBYTES:
            raise ArchiveCorruptedError(self.path, f"the root zarr.json is {where.nbytes} bytes long")
        document = parse_json(self.read_key(ROOT_METADATA_KEY), self.path, "the root zarr.json")
        attributes = document.get("attributes") if isinstance(document, dict) else None
        if not isinstance(attributes, dict) or document.get("zarr_format") != 3:
            raise ArchiveError(self.path, "not a zoblib archive: the root is not a Zarr v3 group")
        return attributes

    def read_chunk(self, node: ArrayNode, index: tuple[int, ...]) -> np.ndarray[Any, Any]:
        """One chunk, checked and decoded, of the full chunk shape (the last one is cached)."""
        key = node.chunk_key(index)
        return self._chunks.get(
            node, index, f"chunk {key!r}", lambda: decode_chunk(node, index, self.read_key(key))
        )

    def read_region(
        self, node: ArrayNode, selection: tuple[slice, ...], out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        return ChunkGrid(node, lambda index: self.read_chunk(node, index)).read(selection, out)

    def read_raw_into(self, node: ArrayNode, out: memoryview, offset: int) -> None:
        where = self._raw_chunk(node)
        if offset + len(out) > node.chunk_nbytes or where.nbytes < node.stored_raw_nbytes:
            raise ArchiveCorruptedError(
                self.path, f"{node.chunk_key(_first(node))!r} is shorter than its metadata says"
            )
        self._read_range(where, out, offset)

    def raw_checksum(self, node: ArrayNode) -> int | None:
        if not node.checksum:
            return None
        stored = bytearray(CHECKSUM_NBYTES)
        self._read_range(self._raw_chunk(node), memoryview(stored), node.chunk_nbytes)
        return int.from_bytes(stored, "little")

    def raw_location(self, node: ArrayNode) -> ByteRange | None:
        return self._raw_chunk(node) if self.supports_memmap else None

    def _raw_chunk(self, node: ArrayNode) -> ByteRange:
        return self._require(node.chunk_key(_first(node)))


def _first(node: ArrayNode) -> tuple[int, ...]:
    return (0,) * len(node.shape)
