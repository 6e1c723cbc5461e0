"""The remote ZIP reader on the less common layouts: a central directory longer than the first
request, ZIP64 end records, and members that are not where their span says."""

from __future__ import annotations

import struct
from typing import Any

import fsspec
import numpy as np
import pytest
from remote_helpers import Requests

import zoblib
from s3_server import S3Server
from zoblib.archive.containers.fsspec_zip import TAIL_NBYTES
from zoblib.errors import ArchiveError


def test_a_central_directory_longer_than_the_first_request(s3: S3Server, s3_requests: Requests) -> None:
    url = s3.url("many-chunks.pkl")
    x = np.random.default_rng(0).integers(0, 1000, 6000 * 128)  # 6,000 chunks of 1 KiB
    zoblib.dump({"x": x}, url, compress=3, chunk_nbytes=1024, storage_options=s3.options)
    s3_requests.reset()
    lazy = zoblib.load(url, mmap_mode="r", storage_options=s3.options)["x"]
    assert len(s3_requests) == 2, s3_requests.seen  # the tail, then the rest of the directory
    s3_requests.reset()
    np.testing.assert_array_equal(lazy[300_032:300_132], x[300_032:300_132])  # one chunk
    assert len(s3_requests) == 1


def _as_zip64(data: bytes) -> bytes:
    """The same ZIP file ended by ZIP64 end records, as writers do past 65,535 members."""
    end = data[-22:]
    assert end[:4] == b"PK\x05\x06"
    count, directory_size, directory_offset = struct.unpack_from("<HLL", end, 10)
    zip64_end = struct.pack(
        "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, directory_size, directory_offset
    )
    locator = struct.pack("<IIQI", 0x07064B50, 0, len(data) - 22, 1)
    return (
        data[:-22]
        + zip64_end
        + locator
        + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    )


def test_zip64_end_records(s3: S3Server, s3_requests: Requests, tmp_path: Any) -> None:
    x = np.random.default_rng(1).standard_normal(200_000)  # 1.6 MB: more than the first request
    local = tmp_path / "data.pkl"
    zoblib.dump({"x": x}, str(local), compress=3, chunk_nbytes=64 << 10)
    data = _as_zip64(local.read_bytes())
    assert len(data) > TAIL_NBYTES
    local.write_bytes(data)
    np.testing.assert_array_equal(zoblib.load(str(local))["x"], x)  # still a valid file
    url = s3.url("data.pkl")
    s3.filesystem().pipe_file(url, data)
    s3_requests.reset()
    lazy = zoblib.load(url, mmap_mode="r", storage_options=s3.options)["x"]
    # The end records tell where the tail starts: no request for the object's size.
    assert s3_requests.seen == [("GetObject", f"bytes=-{TAIL_NBYTES}")]
    np.testing.assert_array_equal(lazy[150_000:150_010], x[150_000:150_010])
    np.testing.assert_array_equal(zoblib.load(url, storage_options=s3.options)["x"], x)


def test_a_truncated_object_is_refused(memory_url: Any, tmp_path: Any) -> None:
    local = tmp_path / "data.pkl"
    zoblib.dump({"x": np.random.default_rng(2).standard_normal(100_000)}, str(local))
    data = local.read_bytes()
    url = memory_url("data.pkl")
    fs = fsspec.filesystem("memory")
    fs.pipe_file(url.removeprefix("memory://"), data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="not a zoblib archive") as caught:
        zoblib.load(url)
    assert url in str(caught.value)
    # Members cut out of the middle: the directory points past what is there.
    fs.pipe_file(url.removeprefix("memory://"), data[:4096] + data[len(data) // 2 :])
    with pytest.raises(ArchiveError):
        zoblib.load(url)
