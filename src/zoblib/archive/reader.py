"""Reading one archive: check its root record, then rebuild the object from the skeleton.

Each referenced array comes back, by ``mmap_mode``, as an ordinary array (read straight into
its final memory), an ``np.memmap`` over the archive's bytes (uncompressed arrays) or a
:class:`LazyArray` (compressed arrays).
"""

from __future__ import annotations

import math
import pickle
import warnings
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoblib.archive.chunks import STREAM_PIECE_NBYTES, byte_view, chunk_region, empty_array, keep_array
from zoblib.archive.containers import ContainerReader
from zoblib.archive.digests import DigestChecker, digest_name, streaming_hasher
from zoblib.archive.guard import check_allocation, reading
from zoblib.archive.integrity import RECORD_CHECKSUM_ATTRIBUTE, checksum, record_checksum
from zoblib.archive.lazy import LazyArray
from zoblib.archive.nodes import ArrayNode
from zoblib.archive.progress import bytes_to_read, read_compressed_counted, region_nbytes
from zoblib.archive.skeleton import NATIVE_BYTE_ORDER, loads_skeleton
from zoblib.archive.writer import FORMAT_VERSION
from zoblib.errors import (
    ArchiveCorruptedError,
    ArchiveError,
    ArchiveVersionError,
    ChecksumError,
    ZoblibError,
)
from zoblib.progress import ByteCounter
from zoblib.safety.policy import Policy

MMAP_MODES = (None, "r", "r+", "c")


class ArchiveReader:
    """An open archive: its root record, its nodes and the references of its skeleton."""

    def __init__(self, container: ContainerReader) -> None:
        self.container = container
        self.path = container.path
        attributes = container.root_attributes()
        record = attributes.get("zoblib")
        if not isinstance(record, dict):
            raise ArchiveError(self.path, "not a zoblib archive: the root has no 'zoblib' attribute")
        version = record.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ArchiveCorruptedError(self.path, f"invalid format_version {version!r}")
        if version > FORMAT_VERSION:
            raise ArchiveVersionError(
                self.path,
                f"written with archive format version {version} (by zoblib "
                f"{record.get('zoblib_version')!r}); this zoblib reads versions up to "
                f"{FORMAT_VERSION}: upgrade zoblib",
            )
        if attributes.get(RECORD_CHECKSUM_ATTRIBUTE) != record_checksum(record):
            raise ChecksumError(self.path, "the root record does not match its checksum")
        self.format_version = version
        self.record = record
        #: Counts the bytes read, for ``load(..., progress=...)``; None: nothing counts.
        self.progress: ByteCounter | None = None
        self._streamed_digests: dict[int, str] = {}
        try:
            self.nodes = {
                _checked_path(p): ArrayNode.from_manifest(p, e) for p, e in dict(record["nodes"]).items()
            }
            self.refs: list[Mapping[str, Any]] = [_checked_ref(ref, self.nodes) for ref in record["refs"]]
            self.skeleton = self.nodes[record["skeleton"]]
            # Raw bytes read as object pointers (an np.memmap of dtype object) would run
            # whatever the file says: no writer stores such a node.
            pointers = [p for p, n in self.nodes.items() if n.dtype.hasobject]
            if pointers:
                raise ValueError(f"nodes {pointers[:3]} have an object dtype")
            if version >= 2:
                unlisted = [p for p, n in self.nodes.items() if n.checksum and n.chunk_checksums is None]
                if unlisted:
                    raise ValueError(f"nodes {unlisted[:3]} do not list their chunks' checksums")
        except Exception as exc:  # any malformed entry: the record is damaged
            raise ArchiveCorruptedError(self.path, f"invalid root record: {exc!r}") from exc
        # Checked before anything is read, so no memory map or lazy slice gets a bad layout.
        self._pack_members = self.pack_members()

    def load(
        self,
        mmap_mode: str | None = None,
        *,
        native_byte_order: bool = False,
        verify: bool = False,
        policy: Policy | None = None,
        progress: ByteCounter | None = None,
    ) -> Any:
        """Rebuild the archived object.

        ``native_byte_order`` (arrays converted to the machine's byte order) needs
        ``mmap_mode=None``. With ``verify``, every node that comes back unread (memory-mapped
        or lazy) is checked whole before the object is returned. With a ``policy`` (safe
        loading), the skeleton runs only the globals it allows. ``progress`` counts the bytes
        read as they come.
        """
        if progress is not None:
            self.progress = progress
            progress.start(bytes_to_read(self, mmap_mode, verify))
        if native_byte_order and mmap_mode is not None:
            raise ValueError("native_byte_order needs mmap_mode=None (a memory map keeps the stored bytes)")
        if mmap_mode in ("r+", "c") and any(node.codec is not None for node in self.nodes.values()):
            # Compressed arrays come back as read-only LazyArrays: nothing to write through.
            # joblib's warning, in joblib's words.
            warnings.warn(
                f'mmap_mode "{mmap_mode}" is not compatible with compressed file {self.path}. '
                f'"{mmap_mode}" flag will be ignored.',
                stacklevel=3,
            )
        with DigestChecker(self.path) as digests:
            return self._load(mmap_mode, native_byte_order, verify, digests, policy)

    def _load(
        self,
        mmap_mode: str | None,
        native_byte_order: bool,
        verify: bool,
        digests: DigestChecker,
        policy: Policy | None = None,
    ) -> Any:
        loaded: dict[int, Any] = {} if mmap_mode is not None else self._read_raw_packs(digests)
        resolved: dict[int, Any] = {}
        unread: dict[str, ArrayNode] = {}
        verified: set[str] = set()

        def check(node: ArrayNode) -> None:
            if node.path not in verified:
                self.verify_node(node, self.progress)
                verified.add(node.path)

        def resolve(ref: int) -> Any:
            if not 0 <= ref < len(self.refs):
                raise ArchiveCorruptedError(
                    self.path, f"the skeleton references array {ref}, which the archive lacks"
                )
            if ref not in resolved:
                from_pack = ref in loaded  # digested as it was read
                array = loaded.pop(ref) if from_pack else self.materialize(ref, mmap_mode)
                node = self.nodes[self.refs[ref]["node"]]
                if node.checksum and not from_pack and not isinstance(array, (np.memmap, LazyArray)):
                    streamed = self._streamed_digests.pop(id(array), None)
                    digests.submit(array, self.refs[ref].get("digest"), node.path, streamed)
                if native_byte_order and not array.dtype.isnative:
                    array = array.astype(array.dtype.newbyteorder("="))
                if isinstance(array, (np.memmap, LazyArray)):
                    unread[node.path] = node
                elif self.progress is not None and not from_pack and "offset" in self.refs[ref]:
                    self.progress.advance(array.nbytes)  # a member of a compressed pack
                resolved[ref] = array
            return resolved[ref]

        data = self.read_whole(self.skeleton).tobytes()
        native = NATIVE_BYTE_ORDER.set(native_byte_order)
        try:
            value = loads_skeleton(data, resolve, policy=policy, path=self.path)
        except ZoblibError:
            raise
        except (pickle.UnpicklingError, EOFError, IndexError) as exc:
            raise ArchiveCorruptedError(self.path, f"the pickle skeleton is damaged: {exc}") from exc
        finally:
            NATIVE_BYTE_ORDER.reset(native)
        if verify:
            for node in unread.values():
                check(node)
        return value

    def verify_node(self, node: ArrayNode, progress: ByteCounter | None = None) -> None:
        """Check every stored byte of ``node`` against its checksums, a piece at a time
        (``progress`` counts them)."""
        if node.codec is not None:
            # Every read of a compressed chunk checks its checksum.
            for index in node.chunk_indices():
                region = chunk_region(node, index)
                self.container.read_region(node, region)
                if progress is not None:
                    progress.advance(region_nbytes(node, region))
            return
        if node.nbytes == 0 or not node.checksum:
            return
        buffer = bytearray(min(node.nbytes, STREAM_PIECE_NBYTES))
        running = 0
        for start in range(0, node.nbytes, len(buffer)):
            view = memoryview(buffer)[: min(len(buffer), node.nbytes - start)]
            self.container.read_raw_into(node, view, start)
            running = checksum(view, running)
            if progress is not None:
                progress.advance(len(view))
        self._verify(node, running)

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
        origin = self._origin(ref_index)
        if "offset" in ref:
            shape = tuple(int(n) for n in ref["shape"])
            offset, order = int(ref["offset"]), str(ref["order"])
        else:
            shape, offset, order = node.shape, 0, node.order
        size = math.prod(shape)
        # A remote archive cannot be mapped: its uncompressed arrays stay lazy, read by range.
        ranged = self.container.supports_ranged_reads
        stays_lazy = mmap_mode is not None and (node.codec is not None or ranged)
        if node.codec is None and mmap_mode is not None:
            mapped = self._memmap(node, offset, shape, order, mmap_mode, digest)
            if mapped is not None:
                return mapped
        if "offset" not in ref:
            if not stays_lazy:
                return self.read_whole(node, digest if node.checksum else None)

            def region(selection: tuple[slice, ...] | None = None) -> np.ndarray[Any, Any]:
                with reading(self.path):
                    return self.container.read_region(node, selection or ())

        else:

            def region(selection: tuple[slice, ...] | None = None) -> np.ndarray[Any, Any]:
                with reading(self.path):
                    flat = self.container.read_region(node, (slice(offset, offset + size, 1),))
                whole: np.ndarray[Any, Any] = flat.reshape(shape, order=order)  # type: ignore[call-overload]
                return whole if selection is None else whole[keep_array(selection)]

            if not stays_lazy:
                return region(None)
        return LazyArray(
            region, shape, node.dtype, digest=digest, description=self._describe(node), origin=origin
        )

    def _origin(self, ref_index: int) -> tuple[Any, ...] | None:
        """How a lazy array of reference ``ref_index`` reopens the archive in another process."""
        if self.container.supports_memmap:
            return (self.path, ref_index)
        location = getattr(self.container, "location", None)  # remote containers'
        if location is not None:
            return (location.url, ref_index, dict(location.storage_options))
        return None

    # ---- whole nodes -----------------------------------------------------------------------

    def read_whole(self, node: ArrayNode, digest: str | None = None) -> np.ndarray[Any, Any]:
        """A whole node, read into a new array and checked.

        With the node's recorded ``digest``, an uncompressed node's content digest is computed
        while it is read, for :class:`DigestChecker` (kept by the new array's id).
        """
        if node.codec is None:
            where = self.container.raw_location(node)
            if where is not None and where.nbytes < node.nbytes:
                raise ArchiveCorruptedError(
                    self.path, f"{node.path!r} holds {where.nbytes} bytes; its metadata claims {node.nbytes}"
                )
        check_allocation(node.nbytes, f"array {node.path!r}")
        out = empty_array(node.shape, node.dtype, node.order)
        if out.size == 0:
            return out
        if node.codec is None:
            view = byte_view(out, node.order).data
            hasher = None if digest is None else streaming_hasher(node, digest)
            self._verify(node, read_and_checksum(self.container, node, view, hasher, self.progress))
            if hasher is not None and digest is not None:
                self._streamed_digests[id(out)] = f"{digest_name(digest)}:{hasher.hexdigest()}"
            return out
        if self.progress is not None:
            return read_compressed_counted(self.container, node, out, self.progress)
        return self.container.read_region(node, tuple(slice(None) for _ in node.shape), out)

    def _verify(self, node: ArrayNode, computed: int) -> None:
        # Version 2 records hold each chunk's checksum, which also ties the bytes to this node.
        listed = node.chunk_checksums
        stored = listed[0] if listed else self.container.raw_checksum(node)
        if stored is not None and stored != computed:
            raise ChecksumError(self.path, f"{node.path!r} does not match its checksum")

    def pack_members(self) -> dict[str, list[tuple[int, int]]]:
        """Each pack's ``(offset, reference number)`` members in offset order.

        Raises ``ArchiveCorruptedError`` unless they cover the pack exactly, with no overlap or gap.
        """
        members: dict[str, list[tuple[int, int]]] = {}
        for number, ref in enumerate(self.refs):
            if "offset" in ref:
                members.setdefault(str(ref["node"]), []).append((int(ref["offset"]), number))
        for path, entries in members.items():
            entries.sort()
            position = 0
            for offset, number in entries:
                if offset != position:
                    raise ArchiveCorruptedError(self.path, f"the members of {path!r} overlap or leave gaps")
                position += math.prod(int(n) for n in self.refs[number]["shape"])
            if position != self.nodes[path].shape[0]:
                raise ArchiveCorruptedError(self.path, f"{path!r} holds data no reference uses")
        return members

    def _read_raw_packs(self, digests: DigestChecker) -> dict[int, np.ndarray[Any, Any]]:
        """Every member of every uncompressed pack, read in order straight into its own array,
        and checked against the pack's checksum and its own digest.

        The checks run on a second thread, a batch of about 8 MiB of members at a time, while
        the next members are read: one hand-off per batch, not per member.
        """
        loaded: dict[int, np.ndarray[Any, Any]] = {}
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoblib-check") as checker:
            for path, entries in self._pack_members.items():
                node = self.nodes[path]
                if node.codec is not None:
                    continue
                where = self.container.raw_location(node)
                if where is not None and where.nbytes < node.nbytes:
                    raise ArchiveCorruptedError(self.path, f"{path!r} is shorter than its metadata says")
                check_allocation(node.nbytes, f"pack {path!r}")
                running: Future[int] | None = None
                batch: list[_PackedMember] = []
                batch_nbytes = 0
                for offset, number in entries:
                    ref = self.refs[number]
                    shape = tuple(int(n) for n in ref["shape"])
                    out = empty_array(shape, node.dtype, str(ref["order"]))
                    view = byte_view(out, str(ref["order"])).data
                    self.container.read_raw_into(node, view, offset * node.dtype.itemsize)
                    loaded[number] = out
                    recorded = ref.get("digest") if node.checksum else None
                    batch.append(_PackedMember(out, view, recorded, path))
                    batch_nbytes += len(view)
                    if batch_nbytes >= STREAM_PIECE_NBYTES:
                        running = checker.submit(_check_batch, running, batch, digests)
                        if self.progress is not None:
                            self.progress.advance(batch_nbytes)
                        batch, batch_nbytes = [], 0
                if batch:
                    running = checker.submit(_check_batch, running, batch, digests)
                    if self.progress is not None:
                        self.progress.advance(batch_nbytes)
                self._verify(node, 0 if running is None else running.result())
        return loaded

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
        where = self.container.raw_location(node)
        if where is None:
            return None
        start = where.offset + offset * node.dtype.itemsize
        if start + math.prod(shape) * node.dtype.itemsize > where.offset + where.nbytes:
            raise ArchiveCorruptedError(self.path, f"{node.path!r} is shorter than its metadata says")
        mapped = np.memmap(where.path, dtype=node.dtype, mode=mode, offset=start, shape=shape, order=order)  # type: ignore[call-overload]
        if mode == "r" and digest is not None:
            mapped.zoblib_digest = digest
        return mapped  # type: ignore[no-any-return]

    def _describe(self, node: ArrayNode) -> str:
        codec = "none" if node.codec is None else node.codec.codec_id
        return f"chunks={node.chunk_shape} codec={codec} in {self.path!r}:{node.path}"


def open_lazy_reference(path: str, ref_index: int, storage_options: Mapping[str, Any] | None = None) -> Any:
    """Reopen reference ``ref_index`` of the archive at ``path`` (or a URL) lazily (for unpickling)."""
    from zoblib.archive.containers import open_reader

    with reading(path):
        return ArchiveReader(open_reader(path, storage_options)).materialize(ref_index, "r")


def read_and_checksum(
    container: ContainerReader,
    node: ArrayNode,
    out: memoryview,
    hasher: Any = None,
    progress: ByteCounter | None = None,
) -> int:
    """Read an uncompressed node's bytes into ``out`` and return their CRC-32C.

    The checksum of each piece (and, with ``hasher``, its content digest) runs in a second
    thread while the next piece is read, so a checked read costs about as much as an unchecked
    one. ``progress`` counts the pieces as they are read.
    """
    if len(out) <= STREAM_PIECE_NBYTES:  # one piece: no thread to start (skeletons, small nodes)
        container.read_raw_into(node, out, 0)
        if progress is not None:
            progress.advance(len(out))
        return _continue_checksum(None, out, hasher)
    if container.concurrent_reads > 1:
        return _read_concurrently(container, node, out, hasher, progress)
    running: Future[int] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoblib-crc") as pool:
        for start in range(0, len(out), STREAM_PIECE_NBYTES):
            piece = out[start : start + STREAM_PIECE_NBYTES]
            container.read_raw_into(node, piece, start)
            running = pool.submit(_continue_checksum, running, piece, hasher)
            if progress is not None:
                progress.advance(len(piece))
        return 0 if running is None else running.result()


def _read_concurrently(
    container: ContainerReader,
    node: ArrayNode,
    out: memoryview,
    hasher: Any,
    progress: ByteCounter | None,
) -> int:
    """:func:`read_and_checksum` with ``container.concurrent_reads`` pieces read at once (each
    into its own part of ``out``: no more memory), checked in order as they arrive."""
    size = container.concurrent_read_nbytes
    pieces = [(start, out[start : start + size]) for start in range(0, len(out), size)]
    window = container.concurrent_reads
    running: Future[int] | None = None
    with (
        ThreadPoolExecutor(max_workers=window, thread_name_prefix="zoblib-read") as readers,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoblib-crc") as checker,
    ):
        # The first piece is read here, alone: it also finds where the node's bytes start (a
        # ZIP member's local header), which the concurrent reads would each fetch again.
        first: Future[None] = Future()
        container.read_raw_into(node, pieces[0][1], 0)
        first.set_result(None)
        reads: list[Future[None]] = [first]
        try:
            for number, (start, piece) in enumerate(pieces):
                if number:
                    reads.append(readers.submit(container.read_raw_into, node, piece, start))
                if number >= window - 1:  # keep `window` reads in flight, check the oldest
                    running = _check_read(
                        pieces, reads, number - window + 1, running, checker, hasher, progress
                    )
            for number in range(max(len(pieces) - window + 1, 0), len(pieces)):
                running = _check_read(pieces, reads, number, running, checker, hasher, progress)
        finally:
            for read in reads:
                read.cancel()  # after an error: no more requests for a read that failed
        return 0 if running is None else running.result()


def _check_read(
    pieces: list[tuple[int, memoryview]],
    reads: list[Future[None]],
    number: int,
    running: Future[int] | None,
    checker: ThreadPoolExecutor,
    hasher: Any,
    progress: ByteCounter | None,
) -> Future[int]:
    """Wait for read ``number`` (raising its error) and chain its piece into the checksum."""
    reads[number].result()
    piece = pieces[number][1]
    if progress is not None:
        progress.advance(len(piece))
    return checker.submit(_continue_checksum, running, piece, hasher)


@dataclass(frozen=True)
class _PackedMember:
    array: np.ndarray[Any, Any]
    view: memoryview
    recorded: Any
    where: str


def _check_batch(previous: Future[int] | None, batch: list[_PackedMember], digests: DigestChecker) -> int:
    # On the check thread, batch after batch in order, so ``previous`` is already done.
    running = 0 if previous is None else previous.result()
    for member in batch:
        running = checksum(member.view, running)
        if isinstance(member.recorded, str) and ":" in member.recorded:
            digests.submit_computed(member.array, member.recorded, member.where)
    return running


def _continue_checksum(previous: Future[int] | None, piece: memoryview, hasher: Any) -> int:
    if hasher is not None:
        hasher.update(piece)
    return checksum(piece, 0 if previous is None else previous.result())


def _checked_ref(ref: Any, nodes: Mapping[str, ArrayNode]) -> Mapping[str, Any]:
    """``ref`` if it is a well-formed reference into ``nodes``; else ``ValueError``."""
    if not isinstance(ref, dict) or ref.get("node") not in nodes:
        raise ValueError(f"reference {ref!r} names no node of the archive")
    if "offset" not in ref:
        return ref
    node = nodes[ref["node"]]
    offset, shape, order = ref["offset"], ref.get("shape"), ref.get("order")
    if (
        not _is_count(offset)
        or not isinstance(shape, list)
        or not all(_is_count(n) for n in shape)
        or order not in ("C", "F")
        or len(node.shape) != 1
        or offset + math.prod(shape) > node.shape[0]
    ):
        raise ValueError(f"reference {ref!r} does not fit in node {node.path!r}")
    return ref


def _checked_path(path: Any) -> str:
    """``path`` if it is a relative store key that stays inside the archive; else ``ValueError``."""
    parts = path.split("/") if isinstance(path, str) else [""]
    if "\\" in str(path) or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"node path {path!r} is not a relative key inside the archive")
    return str(path)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
