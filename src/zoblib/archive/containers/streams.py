"""Archives that arrive as a stream: a pipe, a socket, a compressed or in-memory file object.

A ZIP archive needs random access. A source that cannot give it (a pipe, a socket, a
``gzip.GzipFile``) is copied into an anonymous temporary file first, decompressed on the way
when it is a gzip, bz2, xz or lzma stream (what ``dump(obj, gzip.GzipFile(path, "wb"))``
writes, as joblib users do), and read from there with ``pread`` like any archive file, so that
memory holds one copy of the data, not two.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import tempfile
from typing import IO, cast

from zoblib.archive.containers.zipframing import NotFramed, copy_zip_archive

#: Leading bytes of the compressed streams ``load`` unwraps, and how to open each.
_COMPRESSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"]\x00\x00", "lzma"),
)
_HEAD_NBYTES = 6
_COPY_NBYTES = 8 << 20


def compression_of(head: bytes) -> str | None:
    """The stream compression whose magic number starts ``head``, if any."""
    for magic, name in _COMPRESSED_MAGIC:
        if head.startswith(magic):
            return name
    return None


def file_head(path: str) -> bytes:
    """The first bytes of the file at ``path`` (enough to recognise a format)."""
    with open(path, "rb") as file:
        return file.read(_HEAD_NBYTES)


def is_raw_file(source: IO[bytes]) -> bool:
    """Whether ``source`` reads a real file's bytes as they are (``open(path, 'rb')``)."""
    return isinstance(getattr(source, "raw", source), io.FileIO)


def decompressing(source: IO[bytes], compression: str) -> IO[bytes]:
    """A file object giving the decompressed bytes of ``source``."""
    opened: io.BufferedIOBase
    if compression == "gzip":
        opened = gzip.GzipFile(fileobj=source, mode="rb")
    elif compression == "bz2":
        opened = bz2.BZ2File(source, "rb")
    else:
        opened = lzma.LZMAFile(source, "rb")  # noqa: SIM115 - returned to the caller
    return cast(IO[bytes], opened)


def spool(source: IO[bytes]) -> IO[bytes]:
    """An anonymous temporary file holding the archive ``source`` holds, decompressed if it is
    compressed.

    A seekable ``source`` is read from its start; any other from where it stands, and a ZIP
    archive only up to its last byte (:mod:`.zipframing`), so that a socket left open after it,
    or a second archive behind it, is not read.
    """
    if source.seekable():
        source.seek(0)
    stream = _Prefixed(_peek(source), source)
    compression = compression_of(stream.head)
    spooled = tempfile.TemporaryFile(prefix="zoblib-load-")  # noqa: SIM115 - returned to the caller
    try:
        if compression is not None:
            shutil.copyfileobj(decompressing(cast(IO[bytes], stream), compression), spooled, _COPY_NBYTES)
        else:
            try:
                copy_zip_archive(stream.read_exactly, spooled.write)
            except NotFramed:  # not a ZIP archive zoblib wrote: the rest of the stream, whatever it is
                shutil.copyfileobj(cast(IO[bytes], stream), spooled, _COPY_NBYTES)
        spooled.flush()
    except BaseException:
        spooled.close()
        raise
    return spooled


def _peek(source: IO[bytes]) -> bytes:
    head = b""
    while len(head) < _HEAD_NBYTES:
        more = source.read(_HEAD_NBYTES - len(head))
        if not more:
            break
        head += more
    return head


class _Prefixed(io.RawIOBase):
    """``source`` with ``head`` (bytes already read from it) put back in front.

    Reads never wait for more bytes than the stream has at hand (``read1``), so a socket that
    stays open is not waited on past what was sent.
    """

    def __init__(self, head: bytes, source: IO[bytes]) -> None:
        self.head = head
        self._pending = head
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._pending:
            n = min(len(buffer), len(self._pending))
            buffer[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        read1 = getattr(self._source, "read1", self._source.read)
        data = read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read_exactly(self, n: int) -> bytes:
        """``n`` bytes, or fewer only where the stream ends."""
        parts: list[bytes] = []
        while n:
            part = self.read(n)
            if not part:
                break
            parts.append(part)
            n -= len(part)
        return b"".join(parts)
