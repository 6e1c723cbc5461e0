"""Failures of the store as zoblib's errors naming the URL: missing bucket or key, refused
credentials, a store that does not answer, and what cannot live at a URL."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import fsspec
import h5py
import numpy as np
import pytest

import zoblib
from s3_server import BUCKET, S3Server, free_port
from zoblib import RemoteAccessError, RemoteTimeoutError
from zoblib.errors import ArchiveError, ArchiveNotFoundError


@pytest.mark.parametrize("name", ["gone.pkl", "gone.zarr"])
def test_a_missing_key_or_bucket_is_not_found(s3: S3Server, name: str) -> None:
    for url in (s3.url(name), f"s3://zoblib-no-such-bucket/{name}"):
        with pytest.raises(ArchiveNotFoundError) as caught:
            zoblib.load(url, storage_options=s3.options)
        assert url.removesuffix("/") in str(caught.value)
        assert isinstance(caught.value, FileNotFoundError)
        with pytest.raises(ArchiveNotFoundError):
            zoblib.verify(url, storage_options=s3.options)


def test_dumping_into_a_missing_bucket(s3: S3Server) -> None:
    for name in ("x.pkl", "x.zarr"):
        url = f"s3://zoblib-no-such-bucket/{name}"
        with pytest.raises(ArchiveNotFoundError, match="no such bucket") as caught:
            zoblib.dump({"x": np.arange(1 << 18)}, url, storage_options=s3.options)
        assert url in str(caught.value)


@pytest.fixture(scope="module")
def authenticating_s3() -> Iterator[str]:
    """A second moto server, in a process of its own, that checks credentials (none are valid)."""
    pytest.importorskip("moto.server")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "moto did not start"
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_refused_credentials(authenticating_s3: str) -> None:
    options = {"endpoint_url": authenticating_s3, "key": "unknown", "secret": "wrong"}
    url = f"s3://{BUCKET}/model.pkl"
    with pytest.raises(RemoteAccessError, match="permission denied") as caught:
        zoblib.load(url, storage_options=options)
    assert url in str(caught.value) and isinstance(caught.value, PermissionError)
    with pytest.raises(RemoteAccessError):
        zoblib.dump({"x": 1}, f"s3://{BUCKET}/model.zarr", storage_options=options)


NO_CREDENTIALS = """
import sys, zoblib
from zoblib import RemoteAccessError
try:
    zoblib.load("s3://zoblib-archives/model.pkl", storage_options={"endpoint_url": sys.argv[1]})
except RemoteAccessError as exc:
    print("RemoteAccessError", exc)
"""


def test_no_credentials_in_a_fresh_process(authenticating_s3: str, tmp_path: Any) -> None:
    # A process whose environment holds no AWS credentials at all (nor a metadata service).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    done = subprocess.run(
        [sys.executable, "-c", NO_CREDENTIALS, authenticating_s3],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.startswith("RemoteAccessError"), done.stdout + done.stderr
    assert "s3://zoblib-archives/model.pkl" in done.stdout


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def _impatient(endpoint: str) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "config_kwargs": {"connect_timeout": 0.3, "read_timeout": 0.3, "retries": {"max_attempts": 1}},
    }


def test_a_store_that_does_not_answer_times_out(silent_endpoint: str) -> None:
    pytest.importorskip("s3fs")
    url = f"s3://{BUCKET}/model.pkl"
    options = _impatient(silent_endpoint)
    fsspec.filesystem("s3", **options).retries = 1  # s3fs tries 5 times by default
    with pytest.raises(RemoteTimeoutError, match="timed out") as caught:
        zoblib.load(url, storage_options=options)
    assert url in str(caught.value) and isinstance(caught.value, TimeoutError)


def test_a_store_that_cannot_be_reached() -> None:
    pytest.importorskip("s3fs")
    url = f"s3://{BUCKET}/model.zarr"
    with pytest.raises(RemoteTimeoutError, match=r"cannot be reached|timed out"):
        zoblib.load(url, storage_options=_impatient(f"http://127.0.0.1:{free_port()}"))


def test_an_object_that_is_not_an_archive(memory_url: Any) -> None:
    url = memory_url("notes.txt")
    fsspec.filesystem("memory").pipe_file(url.removeprefix("memory://"), b"just some text\n" * 1000)
    with pytest.raises(ArchiveError, match="not a zoblib archive") as caught:
        zoblib.load(url)
    assert url in str(caught.value)


def test_hdf5_is_refused_at_urls(memory_url: Any, tmp_path: Any) -> None:
    with pytest.raises(ArchiveError, match="HDF5 archives are not supported at URLs"):
        zoblib.dump({"x": np.arange(10)}, memory_url("data.h5"))
    local = tmp_path / "data.h5"
    zoblib.dump({"x": np.arange(1 << 18)}, str(local))
    assert h5py.is_hdf5(local)
    url = memory_url("data.h5")
    fsspec.filesystem("memory").pipe_file(url.removeprefix("memory://"), local.read_bytes())
    with pytest.raises(ArchiveError, match="HDF5 archives are not supported at URLs"):
        zoblib.load(url)


def test_http_urls_are_read_only() -> None:
    pytest.importorskip("aiohttp")
    with pytest.raises(ArchiveError, match="read-only"):
        zoblib.dump({"x": 1}, "http://127.0.0.1:9/data.pkl")


def test_a_missing_protocol_package_is_named() -> None:
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed: nothing is missing")
    from zoblib import MissingProtocolError

    for call in (zoblib.load, zoblib.verify, lambda url: zoblib.dump(1, url)):
        with pytest.raises(MissingProtocolError, match=r"zoblib\[gcs\]") as caught:
            call("gs://bucket/model.pkl")
        assert isinstance(caught.value, ImportError) and "gs://bucket/model.pkl" in str(caught.value)


def test_an_unknown_protocol() -> None:
    with pytest.raises(ArchiveError, match="unknown URL protocol"):
        zoblib.load("nosuchprotocol://bucket/model.pkl")
