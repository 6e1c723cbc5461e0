"""The single-file container: a ZIP file laid out as a Zarr v3 store (zarr's ``ZipStore``).

Members are stored uncompressed (chunks are compressed by their own codecs); the data of every
raw chunk starts at a multiple of 4096 bytes in the file (the local header's extra field is
padded, as Android's zipalign does), so ``np.memmap`` can map it in place.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from typing import IO, ClassVar

from zoblib.archive.containers.base import ByteRange, read_exactly
from zoblib.archive.containers.staging import clean_leftovers, replace_file, staging_path
from zoblib.archive.containers.streams import is_raw_file
from zoblib.archive.containers.zarr_store import ZarrStoreReader, ZarrStoreWriter
from zoblib.archive.containers.zipformat import ZipStreamWriter
from zoblib.errors import ArchiveCorruptedError, ArchiveError

ALIGNMENT = 4096
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
#: The fixed part of a member's local header (its name and extra field follow it).
LOCAL_HEADER_NBYTES = _LOCAL_HEADER.size


class ZipWriter(ZarrStoreWriter):
    """Writes the ZIP aside (or into a caller's open binary file) and renames it into place."""

    format_name: ClassVar[str] = "zip"

    def __init__(self, target: str | IO[bytes], *, durable: bool = True) -> None:
        self.target = target
        self.durable = durable
        self.staging: str | None = None
        if isinstance(target, str):
            clean_leftovers(target)
            self.staging = staging_path(os.path.abspath(target))
            self._file: IO[bytes] = open(self.staging, "xb", buffering=0)  # noqa: SIM115
            self._zip = ZipStreamWriter(self._file, fd=self._file.fileno(), writeback=durable)
        elif target.seekable() and (isinstance(target, io.BytesIO) or is_raw_file(target)):
            self._file = target
            self._zip = ZipStreamWriter(target)
        else:  # a pipe, a socket, a gzip.GzipFile (no seeking back): the CRCs are patched in a
            # temporary file first
            self._file = tempfile.TemporaryFile()  # noqa: SIM115
            self._zip = ZipStreamWriter(self._file)

    def _put(self, key: str, pieces: Iterable[memoryview], nbytes: int, *, align: bool) -> None:
        self._zip.add(key, pieces, nbytes, align=ALIGNMENT if align else 0)

    def commit(self) -> list[str]:
        self._zip.close()
        if self.staging is None:
            if self._file is not self.target:
                self._file.seek(0)
                shutil.copyfileobj(self._file, self.target)  # type: ignore[arg-type]
                self._file.close()
            name = getattr(self.target, "name", None)
            return [name] if isinstance(name, str) else []
        if self.durable:
            os.fsync(self._file.fileno())
        self._file.close()
        assert isinstance(self.target, str)
        path = os.path.abspath(self.target)
        replace_file(self.staging, path, durable=self.durable)
        return [path]

    def abort(self) -> None:
        self._zip.abandon()
        if self._file is not self.target:
            self._file.close()
        if self.staging is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.staging)


class ZipReader(ZarrStoreReader):
    """Reads a ZIP archive by byte ranges: the central directory once, then ``pread``."""

    format_name: ClassVar[str] = "zip"

    def __init__(self, source: str | IO[bytes], *, name: str | None = None) -> None:
        """Read the ZIP file at path ``source``, or in ``source``: a ``BytesIO`` (read in place)
        or a real file's object (a spooled copy of a stream, see ``streams.spool``); ``name``
        names such a source in errors."""
        self._fd: int | None = None
        self._buffer: memoryview | None = None
        self._size = 0
        if isinstance(source, str):
            super().__init__(source)
            self.supports_memmap = True  # type: ignore[misc]
            self._fd = os.open(source, os.O_RDONLY)
            self._size = os.fstat(self._fd).st_size
            handle: IO[bytes] = open(self._fd, "rb", closefd=False)  # noqa: SIM115
        elif isinstance(source, io.BytesIO):
            super().__init__(name or "<file object>")
            self._buffer = source.getbuffer()
            self._size = len(self._buffer)
            handle = source  # zipfile reads only its directory; the caller's object stays open
        else:
            super().__init__(name or str(getattr(source, "name", "<file object>")))
            self._fd = os.dup(source.fileno())
            self._size = os.fstat(self._fd).st_size
            handle = open(self._fd, "rb", closefd=False)  # noqa: SIM115
        try:
            self._members, _ = read_members(handle, self.path)
        except Exception:
            self.close()
            raise
        finally:
            if handle is not source:
                handle.close()
        self._ranges: dict[str, ByteRange] = {}

    def _locate(self, key: str) -> ByteRange | None:
        where = self._ranges.get(key)
        if where is not None:
            return where
        info = stored_member(self._members, key, self.path)
        if info is None:
            return None
        header = bytearray(LOCAL_HEADER_NBYTES)
        self._read_absolute(memoryview(header), info.header_offset)
        data_offset = info.header_offset + local_header_nbytes(header, key, self.path)
        if data_offset + info.file_size > self._size:
            raise ArchiveCorruptedError(self.path, f"member {key!r} runs past the end of the file")
        where = ByteRange(self.path, data_offset, info.file_size)
        self._ranges[key] = where
        return where

    def _read_absolute(self, out: memoryview, offset: int) -> None:
        if self._buffer is not None:
            end = offset + len(out)
            if offset < 0 or end > len(self._buffer):
                raise ArchiveCorruptedError(self.path, f"the file is truncated: it ends before byte {end}")
            out[:] = self._buffer[offset:end]
        else:
            assert self._fd is not None, "reader is closed"
            read_exactly(self._fd, out, offset, self.path)

    def _read_range(self, where: ByteRange, out: memoryview, offset: int) -> None:
        self._read_absolute(out, where.offset + offset)

    def close(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None
        buffer = getattr(self, "_buffer", None)
        if buffer is not None:
            buffer.release()  # lets the caller's BytesIO grow again
            self._buffer = None

    def __del__(self) -> None:
        self.close()


def read_members(source: IO[bytes] | io.RawIOBase, path: str) -> tuple[dict[str, zipfile.ZipInfo], int]:
    """The members of the ZIP file in ``source`` by name, and where its central directory starts.

    ``zipfile`` reads only the end records and the central directory; ``path`` names the file in
    errors. Shared by the local and the remote ZIP readers.

    Raises
    ------
    ArchiveError
        If ``source`` is not a readable ZIP file.
    ArchiveCorruptedError
        If its structure is damaged, or it holds a member name more than once.
    """
    try:
        with zipfile.ZipFile(source) as archive:
            infos = archive.infolist()
            directory_start = int(archive.start_dir)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(path, f"not a zoblib archive (not a readable ZIP file: {exc})") from exc
    except ArchiveError:  # a failed read of the source (a remote object), already named
        raise
    except Exception as exc:  # zipfile's NotImplementedError, struct.error, OverflowError, ...
        raise ArchiveCorruptedError(path, f"the ZIP structure is damaged: {exc!r}") from exc
    members = {info.filename: info for info in infos}
    if len(members) != len(infos):
        counts = collections.Counter(info.filename for info in infos)
        twice = sorted(name for name, count in counts.items() if count > 1)[:3]
        raise ArchiveCorruptedError(path, f"the ZIP file holds members more than once: {twice}")
    return members, directory_start


def stored_member(members: Mapping[str, zipfile.ZipInfo], key: str, path: str) -> zipfile.ZipInfo | None:
    """Member ``key`` of ``members``, or ``None`` if there is none.

    Raises
    ------
    ArchiveError
        If the member is ZIP-compressed: zoblib stores members raw (its codecs compress chunks).
    """
    info = members.get(key)
    if info is not None and info.compress_type != zipfile.ZIP_STORED:
        raise ArchiveError(path, f"member {key!r} is ZIP-compressed; zoblib stores members raw")
    return info


def local_header_nbytes(header: bytes | bytearray | memoryview, key: str, path: str) -> int:
    """The length of the local header that ``header`` starts with (of member ``key``), name and
    extra field included: where the member's data starts, from the header's first byte.

    Raises
    ------
    ArchiveCorruptedError
        If ``header`` does not start with a local header's signature.
    """
    fields = _LOCAL_HEADER.unpack_from(header)
    if fields[0] != _LOCAL_HEADER_SIGNATURE:
        raise ArchiveCorruptedError(path, f"bad local header for member {key!r}")
    name_nbytes, extra_nbytes = fields[-2], fields[-1]
    return int(_LOCAL_HEADER.size + name_nbytes + extra_nbytes)
