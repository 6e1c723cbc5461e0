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
