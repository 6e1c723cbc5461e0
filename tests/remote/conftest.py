"""Fixtures of the remote-archive tests: ``memory://`` URLs, each store (``memory://`` and the
session's S3 server, ``s3`` in ``tests/conftest.py``), and a counter of the HTTP requests s3fs
sends (botocore's ``before-send`` event: one per attempt)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

fsspec = pytest.importorskip("fsspec")

from remote_helpers import Requests  # noqa: E402

from s3_server import BUCKET, S3Server  # noqa: E402


@pytest.fixture
def s3_requests(s3: S3Server) -> Iterator[Requests]:
    """Counts what the (cached, shared) s3fs instance of ``s3.options`` sends."""
    fs = s3.filesystem()
    fs.ls(BUCKET)  # creates the client
    requests = Requests()

    def count(request: Any, event_name: str, **kwargs: Any) -> None:
        header = request.headers.get("Range")
        value = header.decode() if isinstance(header, bytes) else header
        requests.seen.append((event_name.rsplit(".", 1)[-1], value))

    fs.s3.meta.events.register("before-send.s3", count)
    try:
        yield requests
    finally:
        fs.s3.meta.events.unregister("before-send.s3", count)


@pytest.fixture
def memory_url() -> Iterator[Any]:
    root = f"memory://{uuid.uuid4().hex}"
    yield lambda name: f"{root}/{name}"
    with contextlib.suppress(FileNotFoundError):  # a test may have written nothing
        fsspec.filesystem("memory").rm(root[len("memory://") :], recursive=True)


@pytest.fixture(params=["memory", "s3"])
def remote(request: pytest.FixtureRequest) -> Any:
    """``(url maker, storage_options)`` for each store."""
    if request.param == "memory":
        return request.getfixturevalue("memory_url"), None
    server: S3Server = request.getfixturevalue("s3")
    return server.url, server.options
