"""Writing ZIP files (PKWARE APPNOTE 6.3, stored members, ZIP64) for the single-file container.

Python's ``zipfile`` computes each member's CRC-32 and writes in one thread; for a multi-GB array
the CRC alone costs a third of the write. This writer streams member data with ``os.write``
while a second thread computes the CRC-32 of the same pieces (with zlib-ng's vectorised CRC-32,
5x the standard library's zlib here), then patches the local header. A big member's disk
blocks are reserved before its data is written (:func:`~zoblib.archive.containers.staging.preallocate`).
Member data can start at a 4096-byte boundary (for ``np.memmap``).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from zlib_ng import zlib_ng

from zoblib.archive.batching import batches
from zoblib.archive.containers.staging import preallocate, start_writeback
from zoblib.archive.hashlane import lane_or

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_ZIP64_END = struct.Struct("<IQHHIIQQQQ")
_ZIP64_LOCATOR = struct.Struct("<IIQI")
_END = struct.Struct("<IHHHHIIH")
_ZIP64_EXTRA = struct.Struct("<HHQQ")  # in local headers: uncompressed and compressed size
_PADDING_ID = 0xD935  # the extra-field id zipalign uses for padding
_VERSION = 45  # ZIP64
_UTF8_NAMES = 0x0800
_LIMIT = 0xFFFFFFFF
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01: reproducible files
_CRC_OFFSET_IN_LOCAL_HEADER = 14
# A CRC thread running behind the writes may hold at most this many pieces alive.
_MAX_PIECES_IN_FLIGHT = 2
_WRITEBACK_MIN_NBYTES = 8 << 20
_IOV_MAX = 1024  # the most buffers one writev takes on Linux


@dataclass
class _Member:
    name: bytes
    header_offset: int
    size: int
    crc: int = 0


class ZipStreamWriter:
    """Appends stored members to a seekable binary file, then writes the central directory."""

    def __init__(self, file: IO[bytes], *, fd: int | None = None, writeback: bool = False) -> None:
        """Write to ``file``; with ``fd`` (the file's own descriptor) data bypasses its buffer.

        ``writeback`` starts the kernel's writeback of each big piece as soon as it is written,
        so that the fsync before publishing the file overlaps with the writing.
        """
        self._file = file
        self._fd = fd
        self._writeback = writeback and fd is not None
        self._position = file.tell()
        self._members: list[_Member] = []
        self._unflushed = 0  # bytes written since the last writeback was started
        self._crc_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoblib-crc")

    def add(self, name: str, pieces: Iterable[memoryview], size: int, *, align: int = 0) -> int:
        """Store a member of ``size`` bytes given as ``pieces``; returns its data offset."""
        encoded = name.encode()
        member = _Member(encoded, self._position, size)
        extra = _ZIP64_EXTRA.pack(1, 16, size, size)
        if align:
            fixed = _LOCAL.size + len(encoded) + len(extra) + 4
            padding = -(self._position + fixed) % align
            extra += struct.pack("<HH", _PADDING_ID, padding) + bytes(padding)
        header = _LOCAL.pack(
            0x04034B50, _VERSION, _UTF8_NAMES, 0, 0, _DOS_DATE, 0, _LIMIT, _LIMIT, len(encoded), len(extra)
        )
        self._write(header + encoded + extra)
        data_offset = self._position
        if self._fd is not None:
            preallocate(self._fd, data_offset, size)
        member.crc = self._write_data(pieces, size, name)
        self._patch_crc(member)
        self._members.append(member)
        return data_offset

    def close(self) -> None:
        """Write the central directory and the end records (ZIP64 where needed)."""
        self._crc_thread.shutdown(wait=True)
        start = self._position
        records = []
        for m in self._members:
            zip64 = m.size >= _LIMIT or m.header_offset >= _LIMIT
            extra = struct.pack("<HHQQQ", 1, 24, m.size, m.size, m.header_offset) if zip64 else b""
            size32 = _LIMIT if zip64 else m.size
            offset32 = _LIMIT if zip64 else m.header_offset
            records.append(
                _CENTRAL.pack(
                    0x02014B50,
                    (3 << 8) | _VERSION,
                    _VERSION,
                    _UTF8_NAMES,
                    0,
                    0,
                    _DOS_DATE,
                    m.crc,
                    size32,
                    size32,
                    len(m.name),
                    len(extra),
                    0,
                    0,
                    0,
                    0o100644 << 16,
                    offset32,
                )
                + m.name
                + extra
            )
        self._write(b"".join(records))
        directory_size = self._position - start
        count = len(self._members)
        if count >= 0xFFFF or start >= _LIMIT or directory_size >= _LIMIT:
            zip64_end = self._position
            self._write(
                _ZIP64_END.pack(
                    0x06064B50, 44, (3 << 8) | _VERSION, _VERSION, 0, 0, count, count, directory_size, start
                )
            )
            self._write(_ZIP64_LOCATOR.pack(0x07064B50, 0, zip64_end, 1))
            self._write(_END.pack(0x06054B50, 0, 0, 0xFFFF, 0xFFFF, _LIMIT, _LIMIT, 0))
        else:
            self._write(_END.pack(0x06054B50, 0, 0, count, count, directory_size, start, 0))
        self._file.flush()

    def abandon(self) -> None:
        """Stop without finishing the file (it is left without a central directory)."""
        self._crc_thread.shutdown(wait=True, cancel_futures=True)

    # ---- internals ---------------------------------------------------------------------------

    def _write(self, data: bytes | memoryview) -> None:
        self._write_batch([memoryview(data)])

    def _write_batch(self, batch: list[memoryview]) -> None:
        """Write consecutive pieces with as few system calls as possible (``writev``)."""
        nbytes = sum(len(piece) for piece in batch)
        if self._fd is None:
            for piece in batch:
                self._file.write(piece)
        else:
            pending = [piece for piece in batch if len(piece)]
            while pending:
                done = os.writev(self._fd, pending[:_IOV_MAX])
                while pending and done >= len(pending[0]):
                    done -= len(pending[0])
                    pending.pop(0)
                if done:
                    pending[0] = pending[0][done:]
            self._unflushed += nbytes
            if self._writeback and self._unflushed >= _WRITEBACK_MIN_NBYTES:
                start = self._position + nbytes - self._unflushed
                start_writeback(self._fd, start, self._unflushed)
                self._unflushed = 0
        self._position += nbytes

    def _write_data(self, pieces: Iterable[memoryview], size: int, name: str) -> int:
        if self._fd is None:
            self._file.flush()
        crc: Future[int] | None = None
        in_flight: list[Future[int]] = []
        submit = lane_or(self._crc_thread)  # the dump's hashing lane, where it has one
        written = 0
        for batch in batches(pieces):
            # One CRC job and one writev per batch of about 8 MiB: many small pieces (packed
            # arrays) cost no more system calls or thread hand-offs than one big one.
            crc = submit(_chain_crc, crc, batch)
            in_flight.append(crc)
            if len(in_flight) > _MAX_PIECES_IN_FLIGHT:
                in_flight.pop(0).result()
            self._write_batch(batch)
            written += sum(len(piece) for piece in batch)
        if written != size:
            raise ValueError(f"member {name!r}: wrote {written} bytes, expected {size}")
        return 0 if crc is None else crc.result()

    def _patch_crc(self, member: _Member) -> None:
        patch = struct.pack("<I", member.crc)
        where = member.header_offset + _CRC_OFFSET_IN_LOCAL_HEADER
        if self._fd is not None:
            os.pwrite(self._fd, patch, where)
            return
        self._file.seek(where)
        self._file.write(patch)
        self._file.seek(self._position)


def _chain_crc(previous: Future[int] | None, batch: list[memoryview]) -> int:
    # Runs in the single CRC thread, in submission order, so `previous` is already done.
    value = 0 if previous is None else previous.result()
    for piece in batch:
        value = zlib_ng.crc32(piece, value)
    return value
