"""Decoding a chunk's payload with a bound: never more than the chunk's own size.

The archive's record knows how many bytes every chunk decodes to, so a payload is never trusted
to say so itself: a few hundred KiB of zstd or zlib can expand to gigabytes (a decompression
bomb). Each codec known here is decoded with a hard limit of one chunk's bytes (plus one, to see
that a payload goes on), and every failure is a ``ValueError`` whatever the codec raised.

============  =======================================================================
codec id      how the bound is kept
============  =======================================================================
zlib, gzip    ``zlib.decompressobj`` with ``max_length``; gzip may hold several members
bz2           ``bz2.BZ2Decompressor`` with ``max_length``; several streams allowed
lzma          ``lzma.LZMADecompressor`` with ``max_length`` and a memory limit for the
              dictionary the stream asks for (a raw stream's is capped at the chunk size)
zstd          the frames' declared content sizes are read first; frames that declare
              none are decoded into a buffer of exactly one chunk, which libzstd never
              writes past
blosc         the 16-byte header must give the chunk's size and the payload's own length
lz4           the 4-byte size header must give the chunk's size
other         decoded into ``out=`` a buffer of one chunk: a third-party codec is bounded
              only as far as it honours ``out``
============  =======================================================================
"""

from __future__ import annotations

import bz2
import inspect
import lzma
import zlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray

#: The smallest dictionary liblzma accepts; a raw LZMA stream's is cut to the chunk's size.
_LZMA_MIN_DICT = 4096
#: Memory a .xz or .lzma stream may ask its decoder for: presets up to 9 need 65 MiB.
_LZMA_MEMLIMIT_FLOOR = 128 << 20
_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE_MAGIC = 0x184D2A50
_BLOSC_HEADER_NBYTES = 16
_LZ4_HEADER_NBYTES = 4


class _Decompressor(Protocol):
    """What ``zlib``, ``bz2`` and ``lzma`` stream decompressors have in common."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: Any, max_length: int = ..., /) -> bytes: ...


def decode_bounded(codec: Codec, payload: Any, expected_nbytes: int) -> Any:
    """``codec``'s decoding of ``payload``, which must be exactly ``expected_nbytes`` bytes.

    Decoding stops as soon as the output would exceed ``expected_nbytes``, so a payload that
    claims or expands to more never costs more than about one chunk of memory.

    Parameters
    ----------
    codec
        The numcodecs codec the chunk was encoded with.
    payload
        The chunk's stored bytes (any contiguous buffer), without its checksum.
    expected_nbytes
        How many bytes the chunk decodes to, as the archive's record says.

    Returns
    -------
    buffer
        The decoded bytes, exactly ``expected_nbytes`` of them.

    Raises
    ------
    ValueError
        If the payload decodes to more or fewer bytes, or is not valid for the codec.

    Examples
    --------
    >>> import numcodecs, zlib
    >>> bytes(decode_bounded(numcodecs.Zlib(), zlib.compress(b"abc"), 3))
    b'abc'
    >>> decode_bounded(numcodecs.Zlib(), zlib.compress(bytes(1000)), 10)
    Traceback (most recent call last):
        ...
    ValueError: the chunk decodes to more than 10 bytes
    """
    codec_id = getattr(codec, "codec_id", None)
    data = _byte_view(payload)
    try:
        decoder = _DECODERS.get(codec_id) if isinstance(codec_id, str) else None
        decoded = (decoder or _decode_other)(codec, data, expected_nbytes)
    except ValueError:
        raise
    except Exception as exc:
        # Codecs report bad input as RuntimeError, zlib.error, LZMAError, OSError, EOFError,
        # TypeError, MemoryError...; the caller only has to know the chunk cannot be decoded.
        raise ValueError(f"the chunk is not valid {codec_id} data: {exc}") from exc
    return decoded


def _byte_view(payload: Any) -> memoryview:
    try:
        return memoryview(ensure_contiguous_ndarray(payload)).cast("B")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the chunk's payload is not a contiguous buffer: {exc}") from exc


def _too_long(expected_nbytes: int) -> ValueError:
    return ValueError(f"the chunk decodes to more than {expected_nbytes} bytes")


def _check_length(nbytes: int, expected_nbytes: int) -> None:
    if nbytes > expected_nbytes:
        raise _too_long(expected_nbytes)
    if nbytes < expected_nbytes:
        raise ValueError(f"the chunk decodes to {nbytes} bytes, fewer than {expected_nbytes}")


def _decode_streams(
    new_decompressor: Callable[[], _Decompressor],
    data: memoryview,
    expected_nbytes: int,
    *,
    concatenated: bool,
    padding: bool = False,
) -> bytes:
    """Decode one stream (or, if ``concatenated``, several in a row) to at most one byte more
    than expected; ``padding`` allows trailing NUL bytes (gzip and xz writers may add them).
    """
    pieces: list[bytes] = []
    produced = 0
    rest: Any = data
    while True:
        decompressor = new_decompressor()
        piece = decompressor.decompress(rest, expected_nbytes + 1 - produced)
        produced += len(piece)
        if produced > expected_nbytes:
            raise _too_long(expected_nbytes)
        pieces.append(piece)
        if not decompressor.eof:
            raise ValueError("the chunk's compressed stream is truncated")
        rest = decompressor.unused_data
        if not rest or (padding and not rest.strip(b"\0")):
            break
        if not concatenated:
            raise ValueError(f"the chunk has {len(rest)} bytes after its compressed stream")
    _check_length(produced, expected_nbytes)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _decode_zlib(codec: Codec, data: memoryview, expected_nbytes: int) -> bytes:
    return _decode_streams(
        lambda: zlib.decompressobj(zlib.MAX_WBITS), data, expected_nbytes, concatenated=False
    )


def _decode_gzip(codec: Codec, data: memoryview, expected_nbytes: int) -> bytes:
    # Python's gzip reader, which numcodecs uses, accepts several members and trailing NULs.
    return _decode_streams(
        lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
        data,
        expected_nbytes,
        concatenated=True,
        padding=True,
    )


def _decode_bz2(codec: Codec, data: memoryview, expected_nbytes: int) -> bytes:
    return _decode_streams(bz2.BZ2Decompressor, data, expected_nbytes, concatenated=True)


def _decode_lzma(codec: Codec, data: memoryview, expected_nbytes: int) -> bytes:
    config = codec.get_config()
    format_ = config.get("format", lzma.FORMAT_AUTO)
    filters = config.get("filters")
    if format_ == lzma.FORMAT_RAW:
        # A raw stream's dictionary size comes from the record, not the stream; one larger
        # than the chunk is never needed to decode it, and would be allocated whole.
        raw_filters = [_capped_dictionary(spec, expected_nbytes) for spec in filters or ()]
        return _decode_streams(
            lambda: lzma.LZMADecompressor(format=format_, filters=raw_filters),
            data,
            expected_nbytes,
            concatenated=False,
        )
    memlimit = max(4 * expected_nbytes, _LZMA_MEMLIMIT_FLOOR)
    return _decode_streams(
        lambda: lzma.LZMADecompressor(format=format_, memlimit=memlimit),
        data,
        expected_nbytes,
        concatenated=True,
        padding=format_ != lzma.FORMAT_ALONE,
    )


def _capped_dictionary(spec: Any, expected_nbytes: int) -> Any:
    if not isinstance(spec, dict) or "dict_size" not in spec:
        return spec
    return {**spec, "dict_size": min(int(spec["dict_size"]), max(expected_nbytes, _LZMA_MIN_DICT))}


def _decode_zstd(codec: Codec, data: memoryview, expected_nbytes: int) -> Any:
    declared = zstd_content_size(data)
    if declared is not None:
        _check_length(declared, expected_nbytes)
        if expected_nbytes == 0:
            return b""  # numcodecs refuses frames that declare no content
    # libzstd decodes into ``out`` and fails if the frames would write past its end (or leave
    # part of it unwritten when they declare no size); it allocates no window of its own.
    out = np.empty(expected_nbytes, dtype=np.uint8)
    try:
        decoded = codec.decode(data, out=out)
    except RuntimeError as exc:
        if "too small" in str(exc):  # libzstd's "Destination buffer is too small"
            raise _too_long(expected_nbytes) from exc
        raise
    return _checked(decoded, expected_nbytes)


def zstd_content_size(data: memoryview) -> int | None:
    """The total size the Zstandard frames in ``data`` declare, or ``None`` if one declares none.

    Walks the frames (and their blocks, to find where each ends) as RFC 8878 lays them out,
    reading only headers; skippable frames count for nothing.

    Raises
    ------
    ValueError
        If ``data`` is not a sequence of whole Zstandard frames.
    """
    total = 0
    known = True
    offset = 0
    size = len(data)
    while offset < size:
        magic = _le(data, offset, 4)
        if magic & 0xFFFFFFF0 == _ZSTD_SKIPPABLE_MAGIC:
            offset += 8 + _le(data, offset + 4, 4)
            continue
        if magic != _ZSTD_MAGIC:
            raise ValueError("the chunk is not a sequence of Zstandard frames")
        content_size, offset = _zstd_frame(data, offset + 4)
        if content_size is None:
            known = False
        else:
            total += content_size
    if offset != size:
        raise ValueError("the chunk's last Zstandard frame is truncated")
    return total if known else None


def _zstd_frame(data: memoryview, offset: int) -> tuple[int | None, int]:
    """The content size a frame (from its header descriptor at ``offset``) declares, and its end."""
    descriptor = _le(data, offset, 1)
    if descriptor & 0x08:
        raise ValueError("a Zstandard frame header has its reserved bit set")
    single_segment = bool(descriptor & 0x20)
    size_flag = descriptor >> 6
    offset += 1 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 0x03]
    field_nbytes = (1 if single_segment else 0, 2, 4, 8)[size_flag]
    content_size: int | None = None
    if field_nbytes:
        content_size = _le(data, offset, field_nbytes) + (256 if field_nbytes == 2 else 0)
    offset += field_nbytes
    while True:
        header = _le(data, offset, 3)
        block_type = (header >> 1) & 0x03
        if block_type == 3:
            raise ValueError("a Zstandard block has the reserved type")
        offset += 3 + (1 if block_type == 1 else header >> 3)
        if header & 0x01:
            break
    return content_size, offset + (4 if descriptor & 0x04 else 0)


def _le(data: memoryview, offset: int, nbytes: int) -> int:
    """The little-endian unsigned integer of ``nbytes`` bytes at ``offset``."""
    if offset + nbytes > len(data):
        raise ValueError("the chunk ends inside a header")
    return int.from_bytes(data[offset : offset + nbytes], "little")


def _decode_blosc(codec: Codec, data: memoryview, expected_nbytes: int) -> Any:
    # c-blosc trusts its header: it reads 16 bytes and then ``cbytes`` of them, so both are
    # checked against what we hold before it sees the payload.
    if len(data) < _BLOSC_HEADER_NBYTES:
        raise ValueError(f"the chunk ({len(data)} bytes) is shorter than a Blosc header")
    claimed = _le(data, 4, 4)
    cbytes = _le(data, 12, 4)
    if cbytes != len(data):
        raise ValueError(f"the chunk's Blosc header says it is {cbytes} bytes long, not {len(data)}")
    _check_length(claimed, expected_nbytes)
    out = np.empty(expected_nbytes, dtype=np.uint8)
    return _checked(codec.decode(data, out=out), expected_nbytes)


def _decode_lz4(codec: Codec, data: memoryview, expected_nbytes: int) -> Any:
    if len(data) < _LZ4_HEADER_NBYTES:
        raise ValueError(f"the chunk ({len(data)} bytes) is shorter than an LZ4 size header")
    _check_length(_le(data, 0, 4), expected_nbytes)
    out = np.empty(expected_nbytes, dtype=np.uint8)
    return _checked(codec.decode(data, out=out), expected_nbytes)


def _decode_other(codec: Codec, data: memoryview, expected_nbytes: int) -> Any:
    if not _accepts_out(codec):
        return _checked(codec.decode(data), expected_nbytes)
    out = np.empty(expected_nbytes, dtype=np.uint8)
    return _checked(codec.decode(data, out=out), expected_nbytes)


def _accepts_out(codec: Codec) -> bool:
    """Whether ``codec.decode`` takes ``out`` (every numcodecs codec does; a few others not)."""
    try:
        return "out" in inspect.signature(codec.decode).parameters
    except (TypeError, ValueError):
        return True


def _checked(decoded: Any, expected_nbytes: int) -> memoryview:
    """``decoded`` as flat bytes, which must be ``expected_nbytes`` long."""
    view = _byte_view(decoded)
    _check_length(len(view), expected_nbytes)
    return view


_DECODERS: dict[str, Callable[[Codec, memoryview, int], Any]] = {
    "zlib": _decode_zlib,
    "gzip": _decode_gzip,
    "bz2": _decode_bz2,
    "lzma": _decode_lzma,
    "zstd": _decode_zstd,
    "blosc": _decode_blosc,
    "lz4": _decode_lz4,
}
