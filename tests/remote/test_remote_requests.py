"""The requests a remote load sends, counted at the HTTP layer of the real s3fs client.

A 64 MiB array compressed in 4 MiB chunks: opening the archive lazily costs a request or two
(the ZIP file's tail holds its directory and root record), and a 1 MiB slice reads only the
chunks it touches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from remote_helpers import Requests

import zoblib
from s3_server import S3Server

ROWS, COLUMNS = 8192, 1024  # float64: 64 MiB
ROW_NBYTES = COLUMNS * 8


@pytest.fixture(scope="module")
def big() -> np.ndarray:
    # Compressible but not trivially (a chunk keeps a few MiB of stored bytes).
    rng = np.random.default_rng(1)
    return np.round(rng.standard_normal((ROWS, COLUMNS)), 2)


@pytest.fixture(scope="module")
def archives(s3: S3Server, big: np.ndarray) -> dict[str, str]:
    urls = {}
    for container, name in (("zip", "big.pkl"), ("zarr", "big.zarr")):
        urls[container] = s3.url(name)
        zoblib.dump({"x": big}, urls[container], compress=3, storage_options=s3.options)
    urls["raw"] = s3.url("raw.pkl")
    zoblib.dump({"x": big}, urls["raw"], storage_options=s3.options)
    return urls


def _chunk_rows(lazy: Any) -> int:
    description = repr(lazy)
    return int(description.split("chunks=(")[1].split(",")[0])


@pytest.mark.parametrize("container", ["zip", "zarr"])
def test_a_lazy_slice_reads_only_the_chunks_it_touches(
    s3: S3Server, s3_requests: Requests, archives: dict[str, str], big: np.ndarray, container: str
) -> None:
    s3_requests.reset()
    lazy = zoblib.load(archives[container], mmap_mode="r", storage_options=s3.options)["x"]
    opening = len(s3_requests)
    # ZIP: the tail (directory, root record, skeleton); zarr: root zarr.json, skeleton chunk.
    assert opening <= 2, s3_requests.seen
    rows_per_chunk = _chunk_rows(lazy)
    assert ROWS // rows_per_chunk >= 8  # many chunks, so that reading all of them would show
    s3_requests.reset()
    one_mib = 128  # rows: 128 * 8 KiB
    start = 3 * rows_per_chunk + 5
    np.testing.assert_array_equal(lazy[start : start + one_mib], big[start : start + one_mib])
    assert len(s3_requests) == 1, s3_requests.seen  # inside one chunk
    s3_requests.reset()
    across = 5 * rows_per_chunk - 64
    np.testing.assert_array_equal(lazy[across : across + one_mib], big[across : across + one_mib])
    assert len(s3_requests) == 2, s3_requests.seen  # two chunks
    print(f"{container}: open {opening} requests, 1 MiB slice 1 request, across chunks 2")


def test_a_slice_of_an_uncompressed_array_is_one_range_request(
    s3: S3Server, s3_requests: Requests, archives: dict[str, str], big: np.ndarray
) -> None:
    s3_requests.reset()
    lazy = zoblib.load(archives["raw"], mmap_mode="r", storage_options=s3.options)["x"]
    assert len(s3_requests) <= 2, s3_requests.seen
    s3_requests.reset()
    np.testing.assert_array_equal(lazy[1000:1128, 3:9], big[1000:1128, 3:9])
    # The member's local header once, then the 128 rows' bytes (1 MiB) by range.
    ranges = [r for _, r in s3_requests.seen]
    assert len(ranges) == 2, s3_requests.seen
    low, high = (int(n) for n in str(ranges[-1]).removeprefix("bytes=").split("-"))
    assert high - low + 1 == 128 * ROW_NBYTES
    s3_requests.reset()
    np.testing.assert_array_equal(lazy[5000:5001], big[5000:5001])
    assert len(s3_requests) == 1


def test_a_whole_load_reads_each_chunk_once(
    s3: S3Server, s3_requests: Requests, archives: dict[str, str], big: np.ndarray
) -> None:
    s3_requests.reset()
    loaded = zoblib.load(archives["zip"], storage_options=s3.options)["x"]
    np.testing.assert_array_equal(loaded, big)
    lazy = zoblib.load(archives["zip"], mmap_mode="r", storage_options=s3.options)["x"]
    chunks = -(-ROWS // _chunk_rows(lazy))
    gets = s3_requests.operations("GetObject")
    # The first load: tail + one request per chunk; the lazy open: its tail again.
    assert len(gets) <= chunks + 3 and len(s3_requests) == len(gets), s3_requests.seen


@pytest.mark.parametrize("container", ["zip", "zarr"])
def test_a_whole_uncompressed_load_reads_concurrent_32_mib_ranges(
    s3: S3Server, s3_requests: Requests, big: np.ndarray, container: str
) -> None:
    # 64 MiB in one uncompressed chunk: two 32 MiB ranges (the second read alongside the
    # first's check), not eight of 8 MiB; the values, and the checksum of both, are right.
    url = s3.url(f"raw-whole.{'pkl' if container == 'zip' else 'zarr'}")
    zoblib.dump({"x": big}, url, storage_options=s3.options)
    s3_requests.reset()
    loaded = zoblib.load(url, storage_options=s3.options)["x"]
    np.testing.assert_array_equal(loaded, big)
    gets = s3_requests.operations("GetObject")
    assert len(gets) <= 6, s3_requests.seen  # metadata (tail / documents) and the 2 ranges
    ranged = [size for size in s3_requests.range_sizes() if size >= 8 << 20]
    assert sorted(ranged)[-1] > 16 << 20 and len(ranged) == 2, s3_requests.seen


def test_a_damaged_piece_of_a_concurrent_read_is_refused(
    s3: S3Server, big: np.ndarray, tmp_path: Any
) -> None:
    # A byte flipped in the second 32 MiB piece: the chained checksum of the pieces read at
    # once still catches it.
    local = tmp_path / "raw.zarr"
    zoblib.dump({"x": big}, str(local))
    chunk = local / "arrays" / "x" / "c" / "0" / "0"  # the array's one chunk (and its CRC-32C)
    assert chunk.stat().st_size == big.nbytes + 4
    data = bytearray(chunk.read_bytes())
    data[(40 << 20)] ^= 0xFF
    chunk.write_bytes(bytes(data))
    url = s3.url("damaged.zarr")
    fs = s3.filesystem()
    fs.put(str(local), url.split("://", 1)[1], recursive=True)
    with pytest.raises(zoblib.ChecksumError, match=r"damaged|checksum|CRC"):
        zoblib.load(url, storage_options=s3.options)
