"""Archives that arrive as a stream: a pipe, a socket, a compressed or in-memory file object.

A ZIP archive needs random access. A source that cannot give it (a pipe, a socket, a
``gzip.GzipFile``) is copied into an anonymous temporary file first, decompressed on the way
when it is a gzip, bz2, xz, lzma, zlib or lz4 stream (what ``dump(obj, gzip.GzipFile(path,
"wb"))`` writes, as joblib users do), and read from there with ``pread`` like any archive file,
so that memory holds one copy of the data, not two.

The same six compressions wrap joblib's own files (``joblib.dump(..., compress=...)``), which
:mod:`zoblib.joblib_format` reads as a stream through :func:`decompressing`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import tempfile
import zlib
from typing import IO, cast

from zoblib.archive.containers.zipframing import NotFramed, copy_zip_archive
from zoblib.errors import ArchiveError

#: Leading bytes of the compressed streams ``load`` unwraps, and how to open each. (A zlib
#: stream has no magic number; :func:`compression_of` tells it by its checked two-byte header.)
_COMPRESSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"]\x00\x00", "lzma"),
    (b"\x04\x22\x4d\x18", "lz4"),  # an LZ4 frame (lz4.frame, what joblib writes)
)
#: The first byte of a zlib stream with a 32 KiB window, the only one zlib's compressors write.
_ZLIB_CMF = 0x78
_HEAD_NBYTES = 6
_COPY_NBYTES = 8 << 20
_READ_NBYTES = 1 << 20


def compression_of(head: bytes) -> str | None:
    """The stream compression whose magic number starts ``head``, if any.

    Examples
    --------
    >>> import zlib
    >>> compression_of(zlib.compress(b"data")), compression_of(b"PK\x03\x04")
    ('zlib', None)
    """
    for magic, name in _COMPRESSED_MAGIC:
        if head.startswith(magic):
            return name
    # RFC 1950: the header's two bytes, read as a big-endian number, are a multiple of 31, so
    # that text starting with "x" is not taken for a stream.
    if len(head) >= 2 and head[0] == _ZLIB_CMF and int.from_bytes(head[:2], "big") % 31 == 0:
        return "zlib"
    return None


def file_head(path: str) -> bytes:
    """The first bytes of the file at ``path`` (enough to recognise a format)."""
    with open(path, "rb") as file:
        return file.read(_HEAD_NBYTES)


def is_raw_file(source: IO[bytes]) -> bool:
    """Whether ``source`` reads a real file's bytes as they are (``open(path, 'rb')``)."""
    return isinstance(getattr(source, "raw", source), io.FileIO)


def decompressing(source: IO[bytes], compression: str) -> IO[bytes]:
    """A file object giving the decompressed bytes of ``source`` (a name of :func:`compression_of`).

    A stream that ends before its end marker raises ``EOFError`` as it is read.
    """
    opened: io.BufferedIOBase
    if compression == "gzip":
        opened = gzip.GzipFile(fileobj=source, mode="rb")
    elif compression == "bz2":
        opened = bz2.BZ2File(source, "rb")
    elif compression == "zlib":
        opened = io.BufferedReader(_ZlibReader(source), _READ_NBYTES)
    elif compression == "lz4":
        opened = _lz4_frame_reader(source)
    else:
        opened = lzma.LZMAFile(source, "rb")  # noqa: SIM115 - returned to the caller
    return cast(IO[bytes], opened)


def _lz4_frame_reader(source: IO[bytes]) -> io.BufferedIOBase:
    try:
        import lz4.frame  # imported only for the lz4 files that need it
    except ImportError as exc:  # a dependency of zoblib's, but an install may lack it
        name = getattr(source, "name", None)
        raise ArchiveError(
            name if isinstance(name, str) else None,
            "this is an LZ4 frame stream; reading it needs the lz4 package (pip install lz4)",
        ) from exc
    return cast(io.BufferedIOBase, lz4.frame.LZ4FrameFile(source, "rb"))


class _ZlibReader(io.RawIOBase):
    """The decompressed bytes of one zlib stream (joblib's ``compress='zlib'`` files).

    The standard library opens gzip, bz2 and lzma files but has no file object for a bare zlib
    stream. Output is bounded by the caller's buffer (``max_length``), so a small stream that
    expands enormously is never held in memory at once.
    """

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._decompressor = zlib.decompressobj()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while view.nbytes:
            if self._decompressor.eof:
                return 0
            data = self._decompressor.unconsumed_tail or self._source.read(_READ_NBYTES)
            if not data:
                raise EOFError("the zlib stream ends before its end-of-stream marker")
            out = self._decompressor.decompress(data, view.nbytes)
            if out:
                view[: len(out)] = out
                return len(out)
        return 0


def spool(source: IO[bytes]) -> IO[bytes]:
    """An anonymous temporary file holding the archive ``source`` holds, decompressed if it is
    compressed.

    A seekable ``source`` is read from its start; any other from where it stands, and a ZIP
    archive only up to its last byte (:mod:`.zipframing`), so that a socket left open after it,
    or a second archive behind it, is not read.
    """
    if source.seekable():
        source.seek(0)
    stream = PrefixedStream(read_head(source), source)
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


def read_head(source: IO[bytes]) -> bytes:
    """The next few bytes of ``source`` (enough to recognise a format), fewer only at its end."""
    head = b""
    while len(head) < _HEAD_NBYTES:
        more = source.read(_HEAD_NBYTES - len(head))
        if not more:
            break
        head += more
    return head


class PrefixedStream(io.RawIOBase):
    """``source`` with ``head`` (bytes already read from it) put back in front.

    Reads never wait for more bytes than the stream has at hand (``read1``), so a socket that
    stays open is not waited on past what was sent.
    """

    def __init__(self, head: bytes, source: IO[bytes]) -> None:
        self.head = head
        self._given = 0  # how much of head was read
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._given < len(self.head):
            n = min(len(buffer), len(self.head) - self._given)
            buffer[:n] = self.head[self._given : self._given + n]
            self._given += n
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


class RecordingStream(io.RawIOBase):
    """``source``, keeping a copy of every byte read through it (in ``recorded``).

    Reading the start of a stream that cannot seek back, to recognise what it holds, and then
    handing on ``PrefixedStream(bytes(recorded), source)``: the stream as it was.
    """

    def __init__(self, source: IO[bytes]) -> None:
        self.recorded = bytearray()
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        read1 = getattr(self._source, "read1", self._source.read)
        data = read1(len(buffer))
        buffer[: len(data)] = data
        self.recorded += data
        return len(data)
