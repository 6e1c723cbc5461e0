"""Shared half of the Zarr v3 containers: nodes and chunks as keys of a key/value store.

Keys follow the Zarr v3 layout: ``zarr.json`` documents for groups and arrays, chunks under
``<node>/c/<i>/<j>``. A subclass only puts and finds the bytes of one key.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

from zoblib.archive.containers.base import ByteRange, ContainerReader, ContainerWriter
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

    def write_array(
        self, node: ArrayNode, chunks: Iterable[tuple[tuple[int, ...], Iterable[memoryview]]]
    ) -> None:
        raw = node.codec is None
        for index, pieces in chunks:
            if raw:
                self._put(node.chunk_key(index), pieces, node.stored_raw_nbytes, align=True)
            else:
                materialized = list(pieces)
                size = sum(len(piece) for piece in materialized)
                self._put(node.chunk_key(index), materialized, size, align=False)
        self._put_bytes(metadata_key(node.path), encode_json(node.zarr_metadata()))

    def write_root(self, attributes: Mapping[str, Any], groups: Iterable[str]) -> None:
        for group in groups:
            self._put_bytes(metadata_key(group), encode_json(group_metadata()))
        self._put_bytes(ROOT_METADATA_KEY, encode_json(group_metadata(attributes)))


class ZarrStoreReader(ContainerReader):
    """Reads nodes from Zarr v3 keys through :meth:`_locate` and :meth:`_read_range`."""

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

    def read_key(self, key: str) -> bytes:
        where = self._require(key)
        out = bytearray(where.nbytes)
        self._read_range(where, memoryview(out), 0)
        return bytes(out)

    def root_attributes(self) -> dict[str, Any]:
        if self._locate(ROOT_METADATA_KEY) is None:
            raise ArchiveError(self.path, "not a zoblib archive: it has no root zarr.json")
        try:
            document = json.loads(self.read_key(ROOT_METADATA_KEY))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArchiveCorruptedError(self.path, f"root zarr.json is not valid JSON: {exc}") from exc
        attributes = document.get("attributes") if isinstance(document, dict) else None
        if document.get("zarr_format") != 3 or not isinstance(attributes, dict):
            raise ArchiveError(self.path, "not a zoblib archive: the root is not a Zarr v3 group")
        return attributes

    def read_chunk(self, node: ArrayNode, index: tuple[int, ...]) -> bytes:
        return self.read_key(node.chunk_key(index))

    def read_chunk_into(
        self, node: ArrayNode, index: tuple[int, ...], out: memoryview, offset: int = 0
    ) -> None:
        where = self._require(node.chunk_key(index))
        if offset + len(out) > where.nbytes:
            raise ArchiveCorruptedError(
                self.path,
                f"chunk {node.chunk_key(index)!r} holds {where.nbytes} bytes, "
                f"expected at least {offset + len(out)}",
            )
        self._read_range(where, out, offset)

    def chunk_location(self, node: ArrayNode, index: tuple[int, ...]) -> ByteRange | None:
        if not self.supports_memmap:
            return None
        return self._require(node.chunk_key(index))
