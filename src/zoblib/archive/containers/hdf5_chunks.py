"""Chunks of the HDF5 container as bytes: which HDF5 filter stands for which codec, and checks.

zoblib writes and reads compressed HDF5 chunks itself (``write_direct_chunk``, and ``pread``
at the address the chunk index gives), never through HDF5's filter pipeline: loading needs no
filter plugin, and a damaged filter id or datatype cannot crash or mislead the reader. The
pipeline a dataset declares is for other readers (h5py with hdf5plugin), so each codec's output
must be exactly what its HDF5 filter decodes:

- numcodecs Blosc, Zstd, Zlib and BZ2 write what the HDF5 filters 32001, 32015, 1 (deflate)
  and 307 read;
- numcodecs GZip (a gzip header) and LZ4 (its own size header) do not, so HDF5 archives use
  Zlib and Blosc-LZ4 (no shuffle) in their place; codecs with no filter at all become Zlib.

Format version 1 archives declared HDF5's Fletcher-32 filter after the codec's: each stored
chunk is the filter's output followed by 4 bytes of Fletcher-32 (:func:`fletcher32`), and LZ4
chunks are hdf5plugin's LZ4 frames (:func:`decode_hdf5_lz4`).
"""

from __future__ import annotations

import dataclasses
import struct
import warnings
from typing import Any

import numcodecs
import numpy as np
from numcodecs.abc import Codec

from zoblib.archive.chunks import decode_payload
from zoblib.archive.integrity import ChecksumMismatch
from zoblib.archive.nodes import ArrayNode
from zoblib.errors import CompressionError, ZoblibWarning

DEFLATE_FILTER = 1
FLETCHER32_FILTER = 3
BZIP2_FILTER = 307
BLOSC_FILTER = 32001
LZ4_FILTER = 32004
ZSTD_FILTER = 32015
#: The HDF5 filter whose output is each numcodecs codec's stored chunk ("lz4": format version 1).
FILTER_OF_CODEC = {
    "blosc": BLOSC_FILTER,
    "zstd": ZSTD_FILTER,
    "zlib": DEFLATE_FILTER,
    "gzip": DEFLATE_FILTER,
    "bz2": BZIP2_FILTER,
    "lz4": LZ4_FILTER,
}
FLETCHER32_NBYTES = 4
#: Words summed between two folds in HDF5's Fletcher-32 (numpy sums a block of them at once).
_FLETCHER_BLOCK_WORDS = 1 << 20


def hdf5_filter(codec: Codec) -> dict[str, Any]:
    """The ``create_dataset`` keywords declaring the HDF5 filter that decodes ``codec``'s output.

    Raises
    ------
    CompressionError
        For a codec whose output no HDF5 filter decodes (see :func:`hdf5_codec`).
    """
    import hdf5plugin

    config = codec.get_config()
    codec_id = config["id"]
    if codec_id == "blosc":
        blosc = hdf5plugin.Blosc(cname=config["cname"], clevel=config["clevel"], shuffle=config["shuffle"])
        return dict(blosc)
    if codec_id == "zstd":
        return dict(hdf5plugin.Zstd(clevel=config["level"]))
    if codec_id == "zlib":
        return {"compression": "gzip", "compression_opts": config["level"]}
    if codec_id == "bz2":
        return dict(hdf5plugin.BZip2(blocksize=max(1, min(config["level"], 9))))
    raise CompressionError(f"codec {codec_id!r} has no HDF5 filter; with HDF5 use blosc, zstd, zlib or bz2")


def hdf5_codec(codec: Codec | None, path: str) -> Codec | None:
    """``codec``, or the closest codec an HDF5 filter decodes (with a warning naming the change)."""
    if codec is None:
        return None
    config = codec.get_config()
    replacement: Codec
    if config["id"] == "gzip":
        # HDF5's deflate filter reads zlib streams: the same compression without the gzip header.
        replacement = numcodecs.Zlib(level=config["level"])
        reason = "HDF5's deflate filter reads zlib streams, not gzip's"
    elif config["id"] == "lz4":
        replacement = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE)
        reason = "HDF5's LZ4 filter frames blocks differently from numcodecs' LZ4"
    else:
        try:
            hdf5_filter(codec)
            return codec
        except CompressionError:
            level = int(config.get("preset", config.get("level", 6)) or 6)
            replacement = numcodecs.Zlib(level=max(1, min(level, 9)))
            reason = "it has no HDF5 filter"
    warnings.warn(
        f"{path!r}: codec {codec.codec_id!r} cannot be stored in HDF5 ({reason}); compressing with "
        f"{_describe(replacement)} instead",
        ZoblibWarning,
        stacklevel=3,
    )
    return replacement


def _describe(codec: Codec) -> str:
    config = codec.get_config()
    if config["id"] == "zlib":
        return f"zlib (HDF5 gzip/deflate) level {config['level']}"
    return f"blosc {config['cname']} without shuffle"


def fletcher32(data: Any) -> int:
    """HDF5's Fletcher-32 checksum of ``data`` (``H5_checksum_fletcher32``).

    HDF5 sums big-endian 16-bit words (an odd last byte is the high byte of one more word) and
    folds both sums to 16 bits with end-around carry. Folding keeps each sum modulo 65535 and
    keeps it nonzero once any word is nonzero, so each result is 0 for no data at all, else the
    sum modulo 65535 in 1..65535: computed here block by block with numpy.
    """
    view = memoryview(data).cast("B")
    whole = len(view) // 2
    words = np.frombuffer(view, dtype=">u2", count=whole)
    total_words = whole + len(view) % 2
    sum1 = 0
    sum2 = 0
    nonzero = False
    for start in range(0, whole, _FLETCHER_BLOCK_WORDS):
        block = words[start : start + _FLETCHER_BLOCK_WORDS].astype(np.uint64)
        # Word i is added into sum2 once per word from i to the end: (total_words - i) times.
        weights = (np.arange(total_words - start, total_words - start - len(block), -1) % 65535).astype(
            np.uint64
        )
        sum1 += int(block.sum())
        sum2 += int(np.dot(block, weights))
        nonzero = nonzero or bool(block.any())
    if len(view) % 2:
        last = view[-1] << 8
        sum1 += last
        sum2 += last
        nonzero = nonzero or last != 0
    if not nonzero:
        return 0
    return ((sum2 - 1) % 65535 + 1) << 16 | ((sum1 - 1) % 65535 + 1)


def split_fletcher32(stored: Any) -> memoryview:
    """A version 1 chunk's filter output, after checking the Fletcher-32 stored behind it.

    Raises
    ------
    ChecksumMismatch
        If the chunk does not match its Fletcher-32.
    """
    view = memoryview(stored).cast("B")
    if len(view) < FLETCHER32_NBYTES:
        raise ChecksumMismatch(f"{len(view)} bytes cannot hold a Fletcher-32 checksum")
    payload = view[:-FLETCHER32_NBYTES]
    if fletcher32(payload) != int.from_bytes(view[-FLETCHER32_NBYTES:], "little"):
        raise ChecksumMismatch("the chunk does not match its HDF5 Fletcher-32 checksum")
    return payload


def decode_hdf5_lz4(payload: Any, expected_nbytes: int) -> bytearray:
    """hdf5plugin's LZ4 frames (format version 1 chunks) decoded to exactly ``expected_nbytes``.

    The frame is the decoded size (8 bytes) and block size (4 bytes), big endian, then each
    block as its stored size (4 bytes) and LZ4 data, or the raw block where LZ4 did not help.
    """
    view = memoryview(payload).cast("B")
    if len(view) < 12:
        raise ValueError("the chunk is too short for an LZ4 frame")
    total, block_nbytes = struct.unpack_from(">QI", view, 0)
    if total != expected_nbytes:
        raise ValueError(f"the LZ4 frame holds {total} bytes, expected {expected_nbytes}")
    block_nbytes = min(block_nbytes, total) or total
    out = bytearray(total)
    position, done = 12, 0
    decoder = numcodecs.LZ4()
    while done < total:
        size = min(block_nbytes, total - done)
        if position + 4 > len(view):
            raise ValueError("the LZ4 frame is truncated")
        (stored,) = struct.unpack_from(">I", view, position)
        position += 4
        block = view[position : position + stored]
        if len(block) != stored:
            raise ValueError("the LZ4 frame is truncated")
        if stored == size:
            out[done : done + size] = block
        else:
            # numcodecs' LZ4 reads a 4-byte little-endian decoded size, then one LZ4 block.
            decoded = decoder.decode(struct.pack("<I", size) + bytes(block))
            if len(decoded) != size:
                raise ValueError("an LZ4 block does not decode to its size")
            out[done : done + size] = decoded
        position += stored
        done += size
    return out


def decode_stored(node: ArrayNode, payload: Any, *, raw: bool = False) -> np.ndarray[Any, Any]:
    """A chunk's payload (what the HDF5 filter wrote, checksums removed) as one full chunk.

    ``raw``: HDF5 skipped the codec's filter for this chunk (its filter mask says so), so the
    payload is the chunk's bytes themselves. Raises ``ValueError`` for undecodable bytes.
    """
    codec_id = None if node.codec is None or raw else node.codec.codec_id
    if codec_id is None:
        return decode_payload(dataclasses.replace(node, codec=None), payload)
    if codec_id == "lz4":
        return decode_payload(
            dataclasses.replace(node, codec=None), decode_hdf5_lz4(payload, node.chunk_nbytes)
        )
    if codec_id == "gzip":
        assert node.codec is not None
        # Version 1 recorded gzip for what HDF5's deflate filter stored: zlib streams.
        zlib = numcodecs.Zlib(level=node.codec.get_config()["level"])
        return decode_payload(dataclasses.replace(node, codec=zlib), payload)
    return decode_payload(node, payload)
