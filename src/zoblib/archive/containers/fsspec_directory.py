"""The ``.zarr`` container at an fsspec URL: one object per Zarr key (``s3://bucket/data.zarr``).

The archive is a plain Zarr v3 store, so zarr-python opens the same URL. An object store has no
rename, so a dump publishes by order instead: it first removes the old root ``zarr.json`` (from
then on readers see no archive, not a mixture), writes every chunk, then each array's
``zarr.json``, and the root ``zarr.json`` last, which marks the archive complete; keys the old
archive had and the new one lacks are removed after that. A writer killed mid-way leaves
chunks without a root: nothing loads them, and the next dump to the URL replaces them.
"""

from __future__ import annotations

import collections
import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ClassVar

from zoblib.archive.containers.base import ByteRange
from zoblib.archive.containers.ranged import RangedZarrStoreReader
from zoblib.archive.containers.urls import RemoteLocation, remote_errors
from zoblib.archive.containers.zarr_store import ROOT_METADATA_KEY, ZarrStoreWriter
from zoblib.errors import ArchiveCorruptedError, ArchiveError, ArchiveNotFoundError

#: Objects up to this size are uploaded with one PUT; bigger ones stream (multipart on S3).
_SINGLE_PUT_NBYTES = 16 << 20
#: Top-level names a zoblib archive may hold: a prefix holding anything else is not replaced.
_ARCHIVE_NAMES = frozenset({ROOT_METADATA_KEY, "skeleton", "arrays", "packs"})
#: The ``zarr.json`` documents a reader keeps, fetched whole while locating them.
_KEPT_DOCUMENTS = 8
#: Chunks uploading at once.
_UPLOAD_THREADS = 8
#: The most chunk bytes held in memory while their uploads run.
_MAX_PENDING_NBYTES = 64 << 20


class RemoteDirectoryWriter(ZarrStoreWriter):
    """Writes a Zarr v3 store key by key at a URL; the root ``zarr.json`` goes last."""

    format_name: ClassVar[str] = "zarr"

    def __init__(self, location: RemoteLocation) -> None:
        location.require_writable()
        self.location = location
        self._written: set[str] = set()
        self._unpublished = False
        self._uploads = ThreadPoolExecutor(max_workers=_UPLOAD_THREADS, thread_name_prefix="zoblib-upload")
        self._pending: collections.deque[tuple[Future[None], int]] = collections.deque()
        self._pending_nbytes = 0

    def _put(self, key: str, pieces: Iterable[memoryview], nbytes: int, *, align: bool) -> None:
        if not self._unpublished:
            self._unpublish_old()
        if key.endswith(ROOT_METADATA_KEY):
            # A zarr.json is written once every chunk before it is stored: it publishes them.
            self._drain()
        elif nbytes <= _SINGLE_PUT_NBYTES:
            # Chunks upload concurrently (an object store's latency, not its bandwidth, bounds
            # one-at-a-time PUTs). Joined now: the pieces' buffers are reused after we return.
            data = b"".join(pieces)
            while self._pending and self._pending_nbytes + len(data) > _MAX_PENDING_NBYTES:
                self._wait_oldest()
            self._pending.append((self._uploads.submit(self._upload, key, [data], len(data)), len(data)))
            self._pending_nbytes += len(data)
            return
        self._upload(key, pieces, nbytes)

    def _wait_oldest(self) -> None:
        future, nbytes = self._pending.popleft()
        self._pending_nbytes -= nbytes
        future.result()

    def _drain(self) -> None:
        while self._pending:
            self._wait_oldest()

    def _upload(self, key: str, pieces: Iterable[bytes | memoryview], nbytes: int) -> None:
        path = self.location.child(key)
        fs = self.location.fs
        with remote_errors(self.location.url, f"write {key!r}"):
            if nbytes <= _SINGLE_PUT_NBYTES:
                fs.pipe_file(path, b"".join(pieces))
            else:
                upload = fs.open(path, "wb")
                try:
                    for piece in pieces:
                        upload.write(piece)
                except BaseException:
                    with contextlib.suppress(Exception):
                        upload.discard()  # an unfinished multipart upload, never visible
                    raise
                upload.close()
        self._written.add(key)

    def _unpublish_old(self) -> None:
        """Remove the old archive's root record before its first key is overwritten."""
        self._unpublished = True
        location = self.location
        with remote_errors(location.url, "list the archive's prefix"):
            location.fs.invalidate_cache(location.path)  # s3fs keeps listings
            try:
                names = {
                    entry.rstrip("/").rsplit("/", 1)[-1]
                    for entry in location.fs.ls(location.path, detail=False)
                }
            except FileNotFoundError:
                names = set()
        if names - _ARCHIVE_NAMES:
            raise ArchiveError(
                location.url,
                f"holds objects that are not a zoblib archive ({sorted(names - _ARCHIVE_NAMES)[:3]}); "
                "refusing to replace them",
            )
        if ROOT_METADATA_KEY in names:
            with remote_errors(location.url, "remove the old root record"):
                location.fs.rm_file(location.child(ROOT_METADATA_KEY))

    def commit(self) -> list[str]:
        self._drain()
        self._uploads.shutdown()
        location = self.location
        with remote_errors(location.url, "remove the old archive's leftover keys"):
            location.fs.invalidate_cache(location.path)
            try:
                found = location.fs.find(location.path)
            except FileNotFoundError:
                found = []
            prefix = location.path + "/"
            stale = [p for p in found if p.startswith(prefix) and p[len(prefix) :] not in self._written]
            if stale:
                location.fs.rm(stale)
        return [location.url]

    def abort(self) -> None:
        # The root record was not written (or is removed first), so what is left loads as
        # nothing; removing it is only tidiness.
        self._uploads.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        written, self._written = self._written, set()
        if ROOT_METADATA_KEY in written:
            with contextlib.suppress(Exception):
                self.location.fs.rm_file(self.location.child(ROOT_METADATA_KEY))
        rest = [self.location.child(key) for key in written - {ROOT_METADATA_KEY}]
        if rest:
            with contextlib.suppress(Exception):
                self.location.fs.rm(rest)


class RemoteDirectoryReader(RangedZarrStoreReader):
    """Reads a Zarr v3 store at a URL: one GET per document or chunk, range GETs for slices
    of uncompressed arrays."""

    format_name: ClassVar[str] = "zarr"

    def __init__(self, location: RemoteLocation) -> None:
        super().__init__(location.url)
        self.location = location
        self._documents: OrderedDict[str, bytes] = OrderedDict()
        self._sizes: dict[str, int] = {}

    def has_root(self) -> bool:
        """Whether the store has a root ``zarr.json`` (fetched now, kept for the first read)."""
        return self._locate(ROOT_METADATA_KEY) is not None

    def _locate(self, key: str) -> ByteRange | None:
        path = self.location.child(key)
        if key.endswith(ROOT_METADATA_KEY):
            # A small document: fetched whole now (one GET), rather than sized, then fetched.
            data = self._documents.get(key)
            if data is None:
                data = self.location.fetch_if_exists(path)
                if data is None:
                    return None
                self._keep(key, data)
            return ByteRange(path, 0, len(data))
        size = self._sizes.get(key)
        if size is None:
            try:
                with remote_errors(self.location.url, f"find {key!r}"):
                    size = int(self.location.fs.info(path)["size"])
            except ArchiveNotFoundError:
                return None
            self._sizes[key] = size
        return ByteRange(path, 0, size)

    def _keep(self, key: str, data: bytes) -> None:
        self._documents[key] = data
        while len(self._documents) > _KEPT_DOCUMENTS:
            self._documents.popitem(last=False)

    def read_key(self, key: str) -> bytearray:
        data = self._documents.pop(key, None)
        if data is None:
            try:
                data = self.location.fetch(self.location.child(key))
            except ArchiveNotFoundError:
                raise ArchiveCorruptedError(
                    self.path, f"the archive has no {key!r}: it is incomplete, or being replaced"
                ) from None
        return bytearray(data)

    def _read_range(self, where: ByteRange, out: memoryview, offset: int) -> None:
        start = where.offset + offset
        data = self.location.fetch(where.path, start, start + len(out))
        if len(data) != len(out):
            raise ArchiveCorruptedError(
                self.path, f"{where.path!r} ends at byte {start + len(data)}, expected {start + len(out)}"
            )
        out[:] = data
