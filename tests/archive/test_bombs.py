"""Hostile chunk payloads: decompression bombs, short, truncated and garbage chunks (issue 10).

Bombs are decoded in a subprocess whose address space is capped, so that an unbounded decoder
fails with MemoryError (or is killed) instead of taking the test machine's memory.
"""

from __future__ import annotations

import json
import lzma
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import crc32c
import numcodecs
import numpy as np
import pytest

import zoblib
from zoblib.archive.bounded import decode_bounded, zstd_content_size
from zoblib.archive.integrity import record_checksum

MIB = 1 << 20
BOMB_NBYTES = 1 << 30
EXPECTED_NBYTES = 4 * MIB
#: The address space of a bomb's subprocess: Python with numpy and numcodecs takes ~150 MiB.
ADDRESS_LIMIT = 512 * MIB


class NoOutCodec(numcodecs.abc.Codec):  # type: ignore[misc]
    """A third-party codec whose ``decode`` takes no ``out``."""

    codec_id = "test-no-out"

    def encode(self, buf: Any) -> Any:
        return bytes(memoryview(buf).cast("B"))[::-1]

    def decode(self, buf: Any) -> Any:
        return bytes(memoryview(buf).cast("B"))[::-1]


CODECS: dict[str, Any] = {
    "zlib": numcodecs.Zlib(level=3),
    "gzip": numcodecs.GZip(level=3),
    "bz2": numcodecs.BZ2(level=3),
    "lzma": numcodecs.LZMA(preset=3),
    "lzma-raw": numcodecs.LZMA(
        format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 3, "dict_size": 1 << 26}]
    ),
    "zstd": numcodecs.Zstd(level=3),
    "blosc-lz4": numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
    "blosc-zstd": numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE),
    "lz4": numcodecs.LZ4(),
    "delta": numcodecs.Delta(dtype="<i8"),
    "no-out": NoOutCodec(),
}


def chunk_bytes(nbytes: int, seed: int = 0) -> bytes:
    """Random-ish float64 data (a random walk rounded to 3 decimals): compressible, not trivially."""
    values = np.round(np.cumsum(np.random.default_rng(seed).normal(size=nbytes // 8)), 3)
    return values.tobytes()


@pytest.fixture(params=sorted(CODECS))
def codec(request: pytest.FixtureRequest) -> Any:
    return CODECS[request.param]


def test_round_trip(codec: Any) -> None:
    data = chunk_bytes(256 * 1024)
    decoded = decode_bounded(codec, codec.encode(np.frombuffer(data, dtype="<i8")), len(data))
    assert bytes(memoryview(decoded).cast("B")) == data


def test_fewer_bytes_refused(codec: Any) -> None:
    data = chunk_bytes(64 * 1024)
    payload = codec.encode(np.frombuffer(data, dtype="<i8")[:-1])
    with pytest.raises(ValueError):
        decode_bounded(codec, payload, len(data))


def test_more_bytes_refused(codec: Any) -> None:
    data = chunk_bytes(64 * 1024)
    payload = codec.encode(np.frombuffer(data, dtype="<i8"))
    with pytest.raises(ValueError):
        decode_bounded(codec, payload, len(data) - 8)


@pytest.mark.parametrize("cut", [0, 1, 3, 10, 17, "half", "last"])
def test_truncated_refused(codec: Any, cut: int | str) -> None:
    data = chunk_bytes(64 * 1024)
    payload = bytes(codec.encode(np.frombuffer(data, dtype="<i8")))
    end = len(payload) // 2 if cut == "half" else len(payload) - 1 if cut == "last" else int(cut)
    if codec.codec_id in {"delta", "test-no-out"}:
        pytest.skip("not a compressor: any bytes are valid input")
    with pytest.raises(ValueError):
        decode_bounded(codec, payload[:end], len(data))


@pytest.mark.parametrize("seed", range(5))
def test_garbage_refused(codec: Any, seed: int) -> None:
    if codec.codec_id in {"delta", "test-no-out"}:
        pytest.skip("not a compressor: any bytes are valid input")
    rng = np.random.default_rng(seed)
    data = chunk_bytes(64 * 1024)
    payload = bytearray(codec.encode(np.frombuffer(data, dtype="<i8")))
    # Keep the header (as a forger would) and scramble the body; plain noise as well.
    body = slice(min(16, len(payload) // 2), None)
    payload[body] = rng.integers(0, 256, len(payload[body]), dtype=np.uint8).tobytes()
    for hostile in (bytes(payload), rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()):
        with pytest.raises(ValueError):
            decode_bounded(codec, hostile, len(data))


def test_not_a_buffer_refused() -> None:
    with pytest.raises(ValueError):
        decode_bounded(CODECS["zlib"], object(), 10)


# --- Zstandard frames without a content size, written block by block (RFC 8878) ---------------

ZSTD_MAGIC = (0xFD2FB528).to_bytes(4, "little")
#: Frame header descriptor 0: no content size, a window descriptor, no checksum, no dictionary.
ZSTD_NO_SIZE_HEADER = ZSTD_MAGIC + bytes([0x00, 7 << 3])  # window 128 KiB
ZSTD_BLOCK_MAX = 128 * 1024


def zstd_block(kind: int, size: int, content: bytes, *, last: bool) -> bytes:
    return (int(last) | kind << 1 | size << 3).to_bytes(3, "little") + content


def zstd_streamed(data: bytes) -> bytes:
    """``data`` as one frame of raw blocks that declares no content size (as a streaming writer)."""
    pieces = [data[i : i + ZSTD_BLOCK_MAX] for i in range(0, len(data), ZSTD_BLOCK_MAX)] or [b""]
    blocks = [zstd_block(0, len(p), p, last=i == len(pieces) - 1) for i, p in enumerate(pieces)]
    return ZSTD_NO_SIZE_HEADER + b"".join(blocks)


def zstd_zero_bomb(nbytes: int, header: bytes = ZSTD_NO_SIZE_HEADER) -> bytes:
    """A frame of RLE blocks of zeros: 4 bytes of payload per 128 KiB of output."""
    count = nbytes // ZSTD_BLOCK_MAX
    blocks = [zstd_block(1, ZSTD_BLOCK_MAX, b"\0", last=i == count - 1) for i in range(count)]
    return header + b"".join(blocks)


def test_zstd_streamed_frame_decodes() -> None:
    data = chunk_bytes(300 * 1024)
    payload = zstd_streamed(data)
    assert zstd_content_size(memoryview(payload)) is None
    assert numcodecs.Zstd().decode(payload) == data  # libzstd agrees the frame is valid
    assert bytes(decode_bounded(CODECS["zstd"], payload, len(data))) == data
    with pytest.raises(ValueError):
        decode_bounded(CODECS["zstd"], payload, len(data) + 1)
    with pytest.raises(ValueError):
        decode_bounded(CODECS["zstd"], payload, len(data) - 1)


def test_zstd_frames_sum_their_sizes() -> None:
    codec = CODECS["zstd"]
    first, second = chunk_bytes(1000, seed=1), chunk_bytes(2000, seed=2)
    skippable = (0x184D2A53).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"
    payload = bytes(codec.encode(first)) + skippable + bytes(codec.encode(second))
    assert zstd_content_size(memoryview(payload)) == 3000
    assert bytes(decode_bounded(codec, payload, 3000)) == first + second
    # Two frames that together declare fewer bytes than the chunk: libzstd alone would fill
    # part of the output buffer and report success.
    with pytest.raises(ValueError, match="fewer"):
        decode_bounded(codec, payload, 4000)


# --- Bombs, in a subprocess with a capped address space ----------------------------------------

BOMB_SCRIPT = """
import json, resource, sys
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import numcodecs
from zoblib.archive.bounded import decode_bounded
codec = numcodecs.get_codec(json.loads(sys.argv[1]))
payload = open(sys.argv[2], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    decode_bounded(codec, payload, int(sys.argv[4]))
    outcome = "decoded"
except ValueError as exc:
    outcome = "ValueError: " + str(exc)
except BaseException as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "maxrss_kib": maxrss, "growth_kib": maxrss - before}))
"""


def run_capped(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120, env=env
    )


def zlib_zero_bomb(nbytes: int, wbits: int) -> bytes:
    """``nbytes`` zeros deflated: after a full flush, every MiB compresses to the same bytes."""
    zeros = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()
    if wbits > zlib.MAX_WBITS:  # gzip: CRC-32 and size of the whole
        crc = 0
        for _ in range(nbytes // MIB):
            crc = zlib.crc32(zeros, crc)
        trailer = crc.to_bytes(4, "little") + (nbytes % (1 << 32)).to_bytes(4, "little")
    else:  # zlib: Adler-32 of n zeros is (n mod 65521) << 16 | 1
        trailer = ((nbytes % 65521) << 16 | 1).to_bytes(4, "big")
    return first + repeat * (nbytes // MIB - 2) + end[: -len(trailer)] + trailer


def concatenated_bomb(codec: Any, nbytes: int, streams: int) -> bytes:
    """``streams`` compressed streams of ``nbytes // streams`` zeros each, one after the other."""
    return bytes(codec.encode(bytes(nbytes // streams))) * streams


def bombs() -> dict[str, tuple[Any, bytes]]:
    valid_blosc = bytearray(CODECS["blosc-lz4"].encode(bytes(EXPECTED_NBYTES)))
    valid_blosc[4:8] = BOMB_NBYTES.to_bytes(4, "little")
    fcs_header = ZSTD_MAGIC + bytes([0xC0, 7 << 3]) + (1 << 40).to_bytes(8, "little")
    return {
        "zlib": (CODECS["zlib"], zlib_zero_bomb(BOMB_NBYTES, zlib.MAX_WBITS)),
        "gzip": (CODECS["gzip"], zlib_zero_bomb(BOMB_NBYTES, 16 + zlib.MAX_WBITS)),
        "gzip-members": (CODECS["gzip"], concatenated_bomb(CODECS["gzip"], BOMB_NBYTES, 64)),
        "bz2": (CODECS["bz2"], concatenated_bomb(CODECS["bz2"], BOMB_NBYTES, 16)),
        "lzma": (CODECS["lzma"], concatenated_bomb(CODECS["lzma"], BOMB_NBYTES, 16)),
        "lzma-dictionary": (numcodecs.LZMA(format=lzma.FORMAT_ALONE), lzma_alone_huge_dictionary()),
        "zstd-no-size": (CODECS["zstd"], zstd_zero_bomb(BOMB_NBYTES)),
        "zstd-declared-1TiB": (CODECS["zstd"], zstd_zero_bomb(BOMB_NBYTES, fcs_header)),
        "lz4": (
            CODECS["lz4"],
            BOMB_NBYTES.to_bytes(4, "little") + bytes(CODECS["lz4"].encode(bytes(MIB)))[4:],
        ),
        "blosc": (CODECS["blosc-lz4"], bytes(valid_blosc)),
    }


def lzma_alone_huge_dictionary() -> bytes:
    """An .lzma stream whose header (13 bytes, no checksum) asks for a 1.5 GiB dictionary."""
    stream = bytearray(lzma.compress(bytes(16 * MIB), format=lzma.FORMAT_ALONE, preset=0))
    stream[1:5] = (1536 * MIB).to_bytes(4, "little")
    return bytes(stream)


BOMB_NAMES = [
    "blosc", "bz2", "gzip", "gzip-members", "lz4", "lzma", "lzma-dictionary", "zlib",
    "zstd-declared-1TiB", "zstd-no-size",
]  # fmt: skip


@pytest.fixture(scope="module")
def bomb_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    folder = tmp_path_factory.mktemp("bombs")
    files: dict[str, tuple[Any, Path]] = {}
    for name, (codec, payload) in bombs().items():
        path = folder / f"{name}.bin"
        path.write_bytes(payload)
        files[name] = (codec, path)
    assert sorted(files) == BOMB_NAMES
    return files


@pytest.mark.parametrize("name", BOMB_NAMES)
def test_bomb_refused_with_little_memory(bomb_files: dict[str, tuple[Any, Path]], name: str) -> None:
    codec, path = bomb_files[name]
    expected = EXPECTED_NBYTES
    result = run_capped(
        BOMB_SCRIPT, json.dumps(codec.get_config()), str(path), str(ADDRESS_LIMIT), str(expected)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"].startswith("ValueError"), report
    if name == "lzma-dictionary":  # refused by the memory limit, not by a failed allocation
        assert "Memory usage limit" in report["outcome"], report
    # Decoding may take one chunk (4 MiB) and the codec's working memory, never the bomb's size.
    assert report["growth_kib"] < 64 * 1024, report


def test_bomb_harness_catches_unbounded_decoding(bomb_files: dict[str, tuple[Any, Path]]) -> None:
    """The same subprocess, decoding with numcodecs alone, runs out of memory: the cap bites."""
    codec, path = bomb_files["zstd-no-size"]
    script = BOMB_SCRIPT.replace("decode_bounded(codec, payload, int(sys.argv[4]))", "codec.decode(payload)")
    report = json.loads(
        run_capped(script, json.dumps(codec.get_config()), str(path), str(ADDRESS_LIMIT), "0").stdout
    )
    assert not report["outcome"].startswith(("ValueError", "decoded")), report


# --- End to end: a forged archive whose record agrees with its bomb ----------------------------

LOAD_SCRIPT = """
import resource, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import zoblib
try:
    zoblib.load(sys.argv[1])
    print("loaded")
except zoblib.ArchiveError as exc:
    print("ArchiveError:", exc)
except BaseException as exc:
    print(type(exc).__name__, exc)
"""


def test_load_refuses_forged_bomb_chunk(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zarr"
    # 8 MiB: big enough to be stored as its own node (small arrays share a pack), in 4 MiB chunks.
    zoblib.dump(np.arange(1 << 20, dtype=np.float64), path, compress=("zlib", 3))
    chunk = path / "arrays" / "0" / "c" / "0"  # the array itself is the object: no path, its number
    assert chunk.exists()
    payload = zlib_zero_bomb(BOMB_NBYTES, zlib.MAX_WBITS)
    crc = crc32c.crc32c(payload)
    chunk.write_bytes(payload + crc.to_bytes(4, "little"))
    root = path / "zarr.json"
    document = json.loads(root.read_text())
    record = document["attributes"]["zoblib"]
    node = record["nodes"]["arrays/0"]
    node["chunk_crc32c"] = f"{crc:08x}" + node["chunk_crc32c"][8:]
    document["attributes"]["zoblib_crc32c"] = record_checksum(record)
    root.write_text(json.dumps(document))

    result = run_capped(LOAD_SCRIPT, str(path), str(1 << 30))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ArchiveError:"), result.stdout
    assert "decodes to more than" in result.stdout, result.stdout
