"""Publishing on a store without rename: the root record last; a killed writer leaves the old
archive (ZIP: one object, uploaded once complete) or no loadable archive (``.zarr``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest

import zoblib
from s3_server import BUCKET, S3Server
from zoblib.archive.containers import open_writer
from zoblib.archive.writer import WriteOptions, write_archive
from zoblib.errors import ArchiveError, ArchiveNotFoundError, ChecksumError

WRITER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import zoblib
    url, options, nbytes, compress = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    x = np.random.default_rng(7).standard_normal(nbytes // 8)
    print("writing", flush=True)
    zoblib.dump({"x": x, "tag": "new"}, url, compress=compress, chunk_nbytes=1 << 20, storage_options=options)
    print("done", flush=True)
    """
)


def _boto3_client(s3: S3Server) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def _start_writer(s3: S3Server, url: str, nbytes: int, compress: int, scratch: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, url, json.dumps(s3.options), str(nbytes), str(compress)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TMPDIR": str(scratch)},
    )


def _kill_when(process: subprocess.Popen[str], condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the writer finished before it could be interrupted"
        assert time.monotonic() < deadline, "the writer never reached the point to interrupt"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert process.stdout is not None and "done" not in process.stdout.read()


def test_a_zip_writer_killed_mid_upload_leaves_the_old_archive(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = s3.url("model.pkl")
    zoblib.dump({"x": np.arange(10.0), "tag": "old"}, url, storage_options=s3.options)
    client = _boto3_client(s3)
    key = url.removeprefix(f"s3://{BUCKET}/")
    writer = _start_writer(s3, url, 160 << 20, 0, tmp_path)  # a multipart upload (s3fs: over 50 MiB)
    _kill_when(writer, lambda: client.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads"))
    loaded = zoblib.load(url, storage_options=s3.options)
    assert loaded["tag"] == "old"
    np.testing.assert_array_equal(loaded["x"], np.arange(10.0))
    # The killed writer's local copy is removed by the next ZIP dump to a URL.
    assert [p.name[:14] for p in tmp_path.iterdir()] == ["zoblib-upload-"]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    zoblib.dump({"tag": "newer"}, url, storage_options=s3.options)
    assert list(tmp_path.iterdir()) == []
    assert zoblib.load(url, storage_options=s3.options) == {"tag": "newer"}


def test_a_zarr_writer_killed_mid_dump_leaves_no_loadable_archive(s3: S3Server, tmp_path: Path) -> None:
    url = s3.url("model.zarr")
    zoblib.dump({"x": np.arange(10.0), "tag": "old"}, url, storage_options=s3.options)
    client = _boto3_client(s3)
    prefix = url.removeprefix(f"s3://{BUCKET}/")

    def keys() -> set[str]:
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/").get("Contents", [])
        return {entry["Key"][len(prefix) + 1 :] for entry in listed}

    writer = _start_writer(s3, url, 96 << 20, 3, tmp_path)  # about 100 chunk objects
    _kill_when(writer, lambda: "zarr.json" not in keys() and len(keys()) > 8)
    assert "zarr.json" not in keys() and any("/c/" in key for key in keys())
    with pytest.raises(ArchiveError, match="no complete archive here") as caught:
        zoblib.load(url, storage_options=s3.options)
    assert url in str(caught.value)
    # The next dump replaces the leftovers.
    zoblib.dump({"x": np.arange(3), "tag": "again"}, url, storage_options=s3.options)
    assert zoblib.load(url, storage_options=s3.options)["tag"] == "again"
    assert len(keys()) < 12


def test_a_zarr_dump_removes_the_old_archives_extra_keys(memory_url: Any) -> None:
    url = memory_url("data.zarr")
    zoblib.dump({"a": np.zeros(4 << 20), "b": np.ones(1 << 20)}, url, compress=3, chunk_nbytes=1 << 20)
    fs = fsspec.filesystem("memory")
    path = url.removeprefix("memory://")
    before = set(fs.find(path))
    zoblib.dump({"a": np.arange(10)}, url)
    after = set(fs.find(path))
    assert len(after) < len(before) and not any("/b/" in p for p in after)
    np.testing.assert_array_equal(zoblib.load(url)["a"], np.arange(10))


def test_a_prefix_that_is_not_an_archive_is_not_replaced(memory_url: Any) -> None:
    url = memory_url("photos.zarr")
    fsspec.filesystem("memory").pipe_file(url.removeprefix("memory://") + "/holiday.jpg", b"\xff\xd8")
    with pytest.raises(ArchiveError, match="refusing to replace"):
        zoblib.dump({"x": np.arange(1 << 20)}, url)
    assert fsspec.filesystem("memory").cat_file(url.removeprefix("memory://") + "/holiday.jpg") == b"\xff\xd8"


def test_a_reader_of_the_old_archive_never_gets_the_new_bytes(memory_url: Any) -> None:
    url = memory_url("data.zarr")
    zoblib.dump({"x": np.zeros(1 << 20)}, url, compress=3, chunk_nbytes=1 << 20)
    old = zoblib.load(url, mmap_mode="r")["x"]
    zoblib.dump({"x": np.ones(1 << 20)}, url, compress=3, chunk_nbytes=1 << 20)
    # The old record's chunk checksums refuse the new chunks: a clear error, never a mixture.
    with pytest.raises(ChecksumError):
        old[: 1 << 10]
    np.testing.assert_array_equal(zoblib.load(url)["x"], np.ones(1 << 20))


def test_a_failed_zip_dump_leaves_the_old_object(memory_url: Any) -> None:
    url = memory_url("data.pkl")
    zoblib.dump({"tag": "old", "x": np.arange(1 << 18)}, url)

    class Unpicklable:
        def __reduce__(self) -> Any:
            raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        zoblib.dump({"x": np.arange(1 << 18), "bad": Unpicklable()}, url)
    assert zoblib.load(url)["tag"] == "old"


def test_an_aborted_zarr_writer_removes_what_it_wrote(memory_url: Any) -> None:
    # As when commit fails, or the dump is interrupted, after the root record went up.
    url = memory_url("data.zarr")
    writer = open_writer(url, "zarr")
    write_archive({"x": np.arange(1 << 18), "y": np.ones(1 << 17)}, writer, WriteOptions())
    path = url.removeprefix("memory://")
    assert len(fsspec.filesystem("memory").find(path)) > 3
    writer.abort()
    assert fsspec.filesystem("memory").find(path) == []
    with pytest.raises(ArchiveNotFoundError):
        zoblib.load(url)
