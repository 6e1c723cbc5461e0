"""A real S3 server (moto) on loopback for the tests that need one: archives and caches at
``s3://`` URLs. The session fixture ``s3`` (``tests/conftest.py``) starts it once."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: The bucket the server is started with; every test writes under a fresh prefix of its own.
BUCKET = "zoblib-tests"


def free_port() -> int:
    """A loopback port nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class S3Server:
    """The running server: its endpoint, and the ``storage_options`` that reach it."""

    endpoint: str
    options: dict[str, Any]

    def url(self, name: str) -> str:
        """A fresh ``s3://`` URL ending in ``name``, under a prefix no other test uses."""
        return f"s3://{BUCKET}/{uuid.uuid4().hex}/{name}"

    def filesystem(self) -> Any:
        """The (cached, shared) s3fs instance of :attr:`options`."""
        import fsspec

        return fsspec.filesystem("s3", **self.options)


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """Run moto's threaded server on a free loopback port, with :data:`BUCKET` created."""
    import boto3
    import moto.server

    port = free_port()
    server = moto.server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        yield S3Server(endpoint, {"endpoint_url": endpoint, "key": "testing", "secret": "testing"})
    finally:
        server.stop()
