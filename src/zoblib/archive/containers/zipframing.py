"""Finding where a ZIP archive ends in a stream, by reading its records in order.

A socket that stays open after an archive was sent never reaches end-of-file, and two archives
may follow each other on one stream. A ZIP file written by zoblib states the size of every
member in its local header, so a reader can walk it record by record (local headers and data,
the central directory, the end records) and stop at its last byte without reading further.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

#: How a ZIP file's first record, a local file header, starts.
LOCAL_SIGNATURE = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_ZIP64_END = b"PK\x06\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_END = b"PK\x05\x06"
_LOCAL_FIELDS = struct.Struct("<HHHHHIIIHH")  # after the signature: 26 bytes
_CENTRAL_REST = 42
_LIMIT = 0xFFFFFFFF
_DATA_DESCRIPTOR_FLAG = 0x08
_COPY_NBYTES = 8 << 20


class NotFramed(ValueError):
    """The stream is not a ZIP archive whose end its records tell."""


def copy_zip_archive(read: Callable[[int], bytes], write: Callable[[bytes], object]) -> None:
    """Copy one ZIP archive from ``read`` (returns exactly n bytes, or fewer at the stream's end)
    to ``write``, reading nothing past its end record.

    Raises
    ------
    NotFramed
        If the stream ends early or holds a record this walk cannot size (a member with a data
        descriptor, as streaming ZIP writers other than zoblib's make).
    """

    def take(n: int) -> bytes:
        data = read(n)
        if len(data) != n:
            raise NotFramed(f"the stream ends inside the ZIP archive ({len(data)} of {n} bytes)")
        write(data)
        return data

    while True:
        signature = take(4)
        if signature == LOCAL_SIGNATURE:
            fields = _LOCAL_FIELDS.unpack(take(_LOCAL_FIELDS.size))
            flags, stored_size, plain_size, name_len, extra_len = fields[1], fields[6], fields[7], *fields[8:]
            extra = take(name_len + extra_len)[name_len:]
            if flags & _DATA_DESCRIPTOR_FLAG:
                raise NotFramed("a ZIP member with a data descriptor does not state its size")
            size = _zip64_stored_size(extra, stored_size, plain_size)
            while size:
                size -= len(take(min(size, _COPY_NBYTES)))
        elif signature == _CENTRAL:
            rest = take(_CENTRAL_REST)
            name_len, extra_len, comment_len = struct.unpack_from("<HHH", rest, 24)
            take(name_len + extra_len + comment_len)
        elif signature == _ZIP64_END:
            (size,) = struct.unpack("<Q", take(8))
            take(size)
        elif signature == _ZIP64_LOCATOR:
            take(16)
        elif signature == _END:
            (comment_len,) = struct.unpack_from("<H", take(18), 16)
            take(comment_len)
            return
        else:
            raise NotFramed(f"unexpected bytes {signature!r} where a ZIP record should start")


def _zip64_stored_size(extra: bytes, stored_size: int, plain_size: int) -> int:
    """A local header's stored size, from its ZIP64 extra field where the header says so."""
    if stored_size != _LIMIT:
        return stored_size
    position = 0
    while position + 4 <= len(extra):
        header_id, length = struct.unpack_from("<HH", extra, position)
        if header_id == 1:
            values = extra[position + 4 : position + 4 + length]
            index = 8 if plain_size == _LIMIT else 0  # the uncompressed size comes first
            if len(values) < index + 8:
                break
            return int.from_bytes(values[index : index + 8], "little")
        position += 4 + length
    raise NotFramed("a ZIP64 member's extra field does not state its size")
