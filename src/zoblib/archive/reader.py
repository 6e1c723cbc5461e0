"""Reading one archive: check its root record, then rebuild the object from the skeleton.

Each referenced array comes back, by ``mmap_mode``, as an ordinary array (read straight into
its final memory), an ``np.memmap`` over the archive's bytes (uncompressed arrays) or a
:class:`LazyArray` (compressed arrays).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from zoblib.archive.chunks import byte_view, decode_chunk, empty_array
from zoblib.archive.containers import ContainerReader
from zoblib.archive.integrity import CHECKSUM_NBYTES, ChecksumMismatch, checksum
from zoblib.archive.lazy import ChunkGrid, LazyArray
from zoblib.archive.nodes import ArrayNode
from zoblib.archive.skeleton import loads_skeleton
from zoblib.archive.writer import FORMAT_VERSION
from zoblib.errors import (
    ArchiveCorruptedError,
    ArchiveError,
    ArchiveVersionError,
    ChecksumError,
    CompressionError,
    ZoblibError,
)

MMAP_MODES = (None, "r", "r+", "c")


class ArchiveReader:
    """An open archive: its root record, its nodes and the references of its skeleton."""

    def __init__(self, container: ContainerReader) -> None:
        self.container = container
        self.path = container.path
        record = container.root_attributes().get("zoblib")
        if not isinstance(record, dict):
            raise ArchiveError(self.path, "not a zoblib archive: the root has no 'zoblib' attribute")
        version = record.get("format_version")
        if not isinstance(version, int):
            raise ArchiveCorruptedError(self.path, f"invalid format_version {version!r}")
        if version > FORMAT_VERSION:
            raise ArchiveVersionError(
                self.path,
                f"written with archive format version {version} (by zoblib "
                f"{record.get('zoblib_version')}); this zoblib reads versions up to "
                f"{FORMAT_VERSION}: upgrade zoblib",
            )
        self.record = record
        self._grids: dict[str, ChunkGrid] = {}
        self._current_ref = 0
        try:
            self.nodes = {p: ArrayNode.from_manifest(p, e) for p, e in record["nodes"].items()}
            self.refs: list[Mapping[str, Any]] = list(record["refs"])
            self.skeleton = self.nodes[record["skeleton"]]
        except (KeyError, TypeError, ValueError, CompressionError) as exc:
            raise ArchiveCorruptedError(self.path, f"invalid root record: {exc!r}") from exc

    def load(self, mmap_mode: str | None = None, *, native_byte_order: bool = False) -> Any:
        """Rebuild the archived object."""
        loaded: dict[int, Any] = {} if mmap_mode is not None else self._read_raw_packs()
        resolved: dict[int, Any] = {}

        def resolve(ref: int) -> Any:
            if ref not in resolved:
                array = loaded.pop(ref) if ref in loaded else self.materialize(ref, mmap_mode)
                if native_byte_order and not array.dtype.isnative:
                    array = np.asarray(array).astype(array.dtype.newbyteorder("="))
                resolved[ref] = array
            return resolved[ref]

        data = self.read_whole(self.skeleton).tobytes()
        try:
            return loads_skeleton(data, resolve)
        except ZoblibError:
            raise
        except (pickle.UnpicklingError, EOFError, IndexError) as exc:
            raise ArchiveCorruptedError(self.path, f"the pickle skeleton is damaged: {exc}") from exc

    # ---- one reference ----------------------------------------------------------------------

    def materialize(self, ref_index: int, mmap_mode: str | None) -> Any:
        """The array that reference ``ref_index`` stands for."""
        try:
            ref = self.refs[ref_index]
            node = self.nodes[ref["node"]]
        except (IndexError, KeyError, TypeError) as exc:
            raise ArchiveCorruptedError(
                self.path, f"the skeleton references array {ref_index}, which the archive lacks"
            ) from exc
        digest = ref.get("digest")
        self._current_ref = ref_index
        if "offset" not in ref:
            return self._own_array(node, mmap_mode, digest)
        shape = tuple(int(n) for n in ref["shape"])
        return self._packed_member(node, int(ref["offset"]), shape, str(ref["order"]), mmap_mode, digest)

    def _own_array(self, node: ArrayNode, mmap_mode: str | None, digest: str | None) -> Any:
        if node.codec is None:
            if mmap_mode is not None:
                mapped = self._memmap(node, 0, node.shape, node.order, mmap_mode, digest)
                if mapped is not None:
                    return mapped
            return self.read_whole(node)
        if mmap_mode is not None:
            grid = ChunkGrid(node, self._chunk_reader(node))
            return LazyArray(
                grid.read,
                node.shape,
                node.dtype,
                digest=digest,
                description=self._describe(node),
                origin=self._origin(),
            )
        return self.read_whole(node)

    def _packed_member(
        self,
        node: ArrayNode,
        offset: int,
        shape: tuple[int, ...],
        order: str,
        mmap_mode: str | None,
        digest: str | None,
    ) -> Any:
        if node.codec is None:
            if mmap_mode is not None:
                mapped = self._memmap(node, offset, shape, order, mmap_mode, digest)
                if mapped is not None:
                    return mapped
            out = empty_array(shape, node.dtype, order)
            if out.size:
                view = byte_view(out, order).data
                self._read_into(node, view, offset * node.dtype.itemsize)
            return out

        def read_member(selection: tuple[slice, ...] | None = None) -> np.ndarray[Any, Any]:
            flat = self._read_elements(node, offset, offset + math.prod(shape))
            whole: np.ndarray[Any, Any] = flat.reshape(shape, order=order)  # type: ignore[call-overload]
            return whole if selection is None else whole[selection]

        if mmap_mode is not None:
            return LazyArray(
                read_member,
                shape,
                node.dtype,
                digest=digest,
                description=self._describe(node),
                origin=self._origin(),
            )
        return read_member()

    # ---- bytes -----------------------------------------------------------------------------

    def read_whole(self, node: ArrayNode) -> np.ndarray[Any, Any]:
        """A whole node, read into a new array."""
        out = empty_array(node.shape, node.dtype, node.order)
        if out.size == 0:
            return out
        if node.codec is None and node.is_single_chunk:
            self._read_raw_verified(node, byte_view(out, node.order).data)
            return out
        grid = ChunkGrid(node, self._chunk_reader(node))
        return grid.read(tuple(slice(None) for _ in node.shape), out)

    def _read_into(self, node: ArrayNode, out: memoryview, offset: int) -> None:
        self.container.read_chunk_into(node, (0,) * len(node.shape), out, offset)

    def _read_raw_verified(self, node: ArrayNode, out: memoryview) -> None:
        """Read a whole uncompressed single-chunk node into ``out`` and check its checksum."""
        self._read_into(node, out, 0)
        self._verify(node, checksum(out))

    def _verify(self, node: ArrayNode, computed: int) -> None:
        if not node.checksum:
            return
        stored = bytearray(CHECKSUM_NBYTES)
        self._read_into(node, memoryview(stored), node.chunk_nbytes)
        if computed != int.from_bytes(stored, "little"):
            raise ChecksumError(
                self.path, f"{node.chunk_key((0,) * len(node.shape))!r} does not match its checksum"
            )

    def _read_raw_packs(self) -> dict[int, np.ndarray[Any, Any]]:
        """Every member of every uncompressed pack, read in order and checked against the
        pack's checksum (members are read straight into their own arrays)."""
        members: dict[str, list[tuple[int, int]]] = {}
        for number, ref in enumerate(self.refs):
            node = self.nodes.get(str(ref.get("node")))
            if node is not None and node.codec is None and "offset" in ref:
                members.setdefault(node.path, []).append((int(ref["offset"]), number))
        loaded: dict[int, np.ndarray[Any, Any]] = {}
        for path, entries in members.items():
            node = self.nodes[path]
            running = 0
            position = 0
            for offset, number in sorted(entries):
                ref = self.refs[number]
                shape = tuple(int(n) for n in ref["shape"])
                out = empty_array(shape, node.dtype, str(ref["order"]))
                if offset != position or position + out.size > node.shape[0]:
                    raise ArchiveCorruptedError(self.path, f"the members of {path!r} overlap or leave gaps")
                view = byte_view(out, str(ref["order"])).data
                self._read_into(node, view, offset * node.dtype.itemsize)
                running = checksum(view, running)
                position += out.size
                loaded[number] = out
            if position != node.shape[0]:
                raise ArchiveCorruptedError(self.path, f"{path!r} holds data no reference uses")
            self._verify(node, running)
        return loaded

    def _read_elements(self, node: ArrayNode, start: int, stop: int) -> np.ndarray[Any, Any]:
        grid = self._grids.get(node.path)
        if grid is None:
            grid = self._grids[node.path] = ChunkGrid(node, self._chunk_reader(node))
        return grid.read((slice(start, stop, 1),))

    def _chunk_reader(self, node: ArrayNode) -> Any:
        container = self.container
        # The last decoded chunk of each node: packed members that share a chunk (and slices
        # walking through an array) decode it once.
        last: list[Any] = [None, None]

        def read_chunk(index: tuple[int, ...]) -> Any:
            if last[0] == index:
                return last[1]
            data = container.read_chunk(node, index)
            try:
                chunk = decode_chunk(node, data)
            except ChecksumMismatch as exc:
                raise ChecksumError(
                    self.path, f"chunk {node.chunk_key(index)!r} does not match its checksum"
                ) from exc
            except Exception as exc:
                raise ArchiveCorruptedError(
                    self.path, f"chunk {node.chunk_key(index)!r} cannot be decoded: {exc}"
                ) from exc
            last[:] = [index, chunk]
            return chunk

        return read_chunk

    def _memmap(
        self,
        node: ArrayNode,
        offset: int,
        shape: tuple[int, ...],
        order: str,
        mode: str,
        digest: str | None,
    ) -> np.memmap[Any, Any] | None:
        if math.prod(shape) == 0:
            return None
        where = self.container.chunk_location(node, (0,) * len(node.shape))
        if where is None:
            return None
        start = where.offset + offset * node.dtype.itemsize
        if start + math.prod(shape) * node.dtype.itemsize > where.offset + where.nbytes:
            raise ArchiveCorruptedError(self.path, f"{node.path!r} is shorter than its metadata says")
        mapped = np.memmap(where.path, dtype=node.dtype, mode=mode, offset=start, shape=shape, order=order)  # type: ignore[call-overload]
        if mode == "r" and digest is not None:
            mapped.zoblib_digest = digest
        return mapped  # type: ignore[no-any-return]

    def _origin(self) -> tuple[str, int] | None:
        return (self.path, self._current_ref) if self.container.supports_memmap else None

    def _describe(self, node: ArrayNode) -> str:
        codec = "none" if node.codec is None else node.codec.codec_id
        return f"chunks={node.chunk_shape} codec={codec} in {self.path!r}:{node.path}"


def open_lazy_reference(path: str, ref_index: int) -> Any:
    """Reopen reference ``ref_index`` of the archive at ``path`` lazily (for unpickling)."""
    from zoblib.archive.containers import open_reader

    return ArchiveReader(open_reader(path)).materialize(ref_index, "r")
