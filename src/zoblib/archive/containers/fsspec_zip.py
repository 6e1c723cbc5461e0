"""The single-file (ZIP) container at an fsspec URL, read with range requests.

Reading: one request for the object's last 256 KiB (a suffix range) holds the ZIP end records,
the central directory and, since a dump writes them last, the root record and the skeleton's
metadata; every member up to 64 MiB after that costs one request for its local header and data
together (a member ends where the next one starts), a bigger one a request for its header first.
Slices of uncompressed arrays are read by byte range.

Writing: the ZIP file is written to a local temporary file, then uploaded as one object. A PUT
(or an S3 multipart upload, which becomes visible only when it completes) replaces the object
atomically: readers see the old archive or the new one, and a writer killed mid-way leaves the
old one.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import struct
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import IO, Any, ClassVar

from zoblib._processes import process_alive
from zoblib.archive.containers.base import ByteRange, ContainerWriter, NodeData
from zoblib.archive.containers.ranged import RangedZarrStoreReader
from zoblib.archive.containers.urls import RemoteLocation, remote_errors
from zoblib.archive.containers.zip import (
    LOCAL_HEADER_NBYTES,
    ZipWriter,
    local_header_nbytes,
    read_members,
    stored_member,
)
from zoblib.archive.nodes import ArrayNode
from zoblib.errors import ArchiveCorruptedError

#: The suffix fetched first: end records, central directory, root record.
TAIL_NBYTES = 256 << 10
#: Members up to this size are fetched whole with their local header, in one request.
_WHOLE_MEMBER_NBYTES = 64 << 20
#: The most a local header may add to its member's data (name and extra field).
_MAX_HEADER_NBYTES = LOCAL_HEADER_NBYTES + 2 * 0xFFFF
_END = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
#: Members fetched with their local header and kept for the read that follows.
_KEPT_MEMBERS = 4
#: Names the writers' local copies (``zoblib-upload-<pid>-...``): a dead pid's are removed.
_SCRATCH_PREFIX = "zoblib-upload-"


class RemoteZipWriter(ContainerWriter):
    """Writes the ZIP file to a local temporary file, uploaded as one object in :meth:`commit`."""

    format_name: ClassVar[str] = "zip"

    def __init__(self, location: RemoteLocation) -> None:
        location.require_writable()
        self.location = location
        _remove_dead_scratch_files()
        descriptor, self._scratch = tempfile.mkstemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-", suffix=".zip")
        self._file: IO[bytes] = open(descriptor, "w+b", buffering=0)  # noqa: SIM115
        self._zip = ZipWriter(self._file, durable=False)

    def stored_node(self, node: ArrayNode) -> ArrayNode:
        return self._zip.stored_node(node)

    def write_array(self, node: ArrayNode, data: NodeData) -> list[int]:
        return self._zip.write_array(node, data)

    def write_root(self, attributes: Mapping[str, Any], groups: Iterable[str]) -> None:
        self._zip.write_root(attributes, groups)

    def commit(self) -> list[str]:
        try:
            self._zip.commit()
            self._file.close()
            with remote_errors(self.location.url, "upload the archive"):
                self.location.fs.put_file(self._scratch, self.location.path)
        finally:
            self._remove_scratch()
        return [self.location.url]

    def abort(self) -> None:
        self._zip.abort()
        self._remove_scratch()

    def _remove_scratch(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._scratch)


class RemoteZipReader(RangedZarrStoreReader):
    """Reads a ZIP archive at a URL by range requests (see the module's docstring)."""

    format_name: ClassVar[str] = "zip"

    def __init__(self, location: RemoteLocation, tail: bytes | None = None) -> None:
        """Read the archive at ``location``; ``tail`` is its last bytes, if already fetched
        (``TAIL_NBYTES`` of them, or the whole object if shorter)."""
        super().__init__(location.url)
        self.location = location
        self._tail = location.fetch(location.path, -TAIL_NBYTES) if tail is None else tail
        bounds = _directory_bounds(self._tail)
        self._tail_start = self._find_tail_start(bounds)
        self._size = self._tail_start + len(self._tail)
        if bounds is not None and bounds[1] < self._tail_start:
            # The directory starts before the tail: fetch the rest of it in one more request,
            # with as much again before it, where the root record (about as long) was written.
            directory_offset, directory_size = bounds[1], bounds[2]
            start = max(0, directory_offset - max(TAIL_NBYTES, directory_size))
            self._tail = self.location.fetch(self.location.path, start, self._tail_start) + self._tail
            self._tail_start = start
        self._members_data: OrderedDict[int, memoryview] = OrderedDict()
        self._members, directory_start = read_members(_RangeFile(self), self.path)
        # A member's local header and data end where the next member (or the directory) starts.
        starts = sorted({info.header_offset for info in self._members.values()} | {directory_start})
        self._span_end = dict(itertools.pairwise(starts))
        self._ranges: dict[str, ByteRange] = {}

    def _find_tail_start(self, bounds: tuple[int, int, int] | None) -> int:
        """Where the fetched tail starts in the object, told by the end records it holds (the
        records after the central directory follow it directly)."""
        if len(self._tail) < TAIL_NBYTES:
            return 0  # the whole object
        if bounds is not None:
            after_directory, directory_offset, directory_size = bounds
            if directory_offset + directory_size >= after_directory:
                return directory_offset + directory_size - after_directory
        with remote_errors(self.location.url, "find the archive's size"):
            size = int(self.location.fs.size(self.location.path))
        return size - len(self._tail)

    def read_at(self, offset: int, nbytes: int) -> bytes:
        """``nbytes`` bytes from ``offset`` (from the fetched tail where it holds them)."""
        end = min(offset + nbytes, self._size)
        if offset >= end:
            return b""
        if offset >= self._tail_start:
            return self._tail[offset - self._tail_start : end - self._tail_start]
        head = self.location.fetch(self.location.path, offset, min(end, self._tail_start))
        if end > self._tail_start:
            head += self._tail[: end - self._tail_start]
        return head

    def _locate(self, key: str) -> ByteRange | None:
        if key not in self._ranges:
            info = stored_member(self._members, key, self.path)
            if info is None:
                return None
            self._ranges[key] = self._fetch_local_header(key, info)
        return self._ranges[key]

    def _fetch_local_header(self, key: str, info: zipfile.ZipInfo) -> ByteRange:
        """Where member ``key``'s data lies, told by its local header; a small member's data
        comes in the same request and is kept for the read that follows."""
        start = info.header_offset
        span_end = self._span_end.get(start, self._size)
        # Small members come with their header in one request; a span much longer than its
        # member (a gap in a ZIP file another tool wrote) is not fetched whole.
        whole = (
            info.file_size <= _WHOLE_MEMBER_NBYTES and span_end - start <= info.file_size + _MAX_HEADER_NBYTES
        )
        fetched = memoryview(self.read_at(start, span_end - start if whole else LOCAL_HEADER_NBYTES))
        if len(fetched) < LOCAL_HEADER_NBYTES:
            raise ArchiveCorruptedError(self.path, f"member {key!r} runs past the end of the file")
        data_start = local_header_nbytes(fetched, key, self.path)
        if start + data_start + info.file_size > min(span_end, self._size):
            raise ArchiveCorruptedError(self.path, f"member {key!r} runs past the end of its space")
        where = ByteRange(self.path, start + data_start, info.file_size)
        if whole:
            self._members_data[where.offset] = fetched[data_start : data_start + info.file_size]
            while len(self._members_data) > _KEPT_MEMBERS:
                self._members_data.popitem(last=False)
        return where

    def _read_range(self, where: ByteRange, out: memoryview, offset: int) -> None:
        held = self._members_data.get(where.offset)
        if held is not None and offset + len(out) <= len(held):
            out[:] = held[offset : offset + len(out)]
            if offset + len(out) == len(held):
                self._members_data.pop(where.offset, None)  # read to its end: not needed again
            return
        start = where.offset + offset
        data = self.read_at(start, len(out))
        if len(data) != len(out):
            raise ArchiveCorruptedError(
                self.path, f"the file is truncated: it ends before byte {start + len(out)}"
            )
        out[:] = data


def _remove_dead_scratch_files() -> None:
    """Remove the local copies that killed writers left in the temporary directory."""
    directory = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if not entry.name.startswith(_SCRATCH_PREFIX):
                continue
            pid = entry.name[len(_SCRATCH_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and not process_alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def is_zip_tail(tail: bytes) -> bool:
    """Whether ``tail`` (an object's last bytes) ends with a ZIP end record."""
    return _end_record_position(tail) is not None


def _directory_bounds(tail: bytes) -> tuple[int, int, int] | None:
    """From a ZIP file's last bytes: where the records after its central directory start in
    ``tail``, and the directory's offset and size in the file (``None``: no end record)."""
    end = _end_record_position(tail)
    if end is None:
        return None
    _, _, _, _, _, directory_size, directory_offset, _ = _END.unpack_from(tail, end)
    locator = end - _ZIP64_LOCATOR.size
    if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        at = tail.rfind(b"PK\x06\x06", 0, locator)
        if at < 0 or at + 56 > locator:
            return None
        directory_size, directory_offset = struct.unpack_from("<QQ", tail, at + 40)
        return at, int(directory_offset), int(directory_size)
    return end, int(directory_offset), int(directory_size)


def _end_record_position(tail: bytes) -> int | None:
    """Where the ZIP end-of-central-directory record starts in ``tail`` (it ends the file)."""
    lowest = max(0, len(tail) - _END.size - 0xFFFF)
    at = tail.rfind(b"PK\x05\x06", lowest)
    while at >= 0:
        if at + _END.size <= len(tail):
            (comment_nbytes,) = struct.unpack_from("<H", tail, at + 20)
            if at + _END.size + comment_nbytes == len(tail):
                return at
        at = tail.rfind(b"PK\x05\x06", lowest, at)
    return None


class _RangeFile(io.RawIOBase):
    """The remote object as a read-only file for ``zipfile`` (which reads only its directory)."""

    def __init__(self, reader: RemoteZipReader) -> None:
        self._reader = reader
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._reader._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._reader.read_at(self._position, len(view))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)
