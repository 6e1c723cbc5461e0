"""Reading archives over plain HTTP(S) with range requests (read-only)."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import zoblib
from zoblib import LazyArray

pytest.importorskip("aiohttp")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Python's file server, with the ``Range`` header (which it ignores) honoured."""

    ranges: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        header = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if header is None or not path.is_file():
            super().do_GET()
            return
        self.ranges.append(header)
        data = path.read_bytes()
        match = _RANGE.match(header)
        assert match is not None, header
        first, last = match.groups()
        if first == "":
            start, end = max(0, len(data) - int(last)), len(data)
        else:
            start, end = int(first), min(len(data), int(last) + 1 if last else len(data))
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        self.wfile.write(data[start:end])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    ranges: ClassVar[list[str]] = []
    handler = type("Handler", (_RangeHandler,), {"ranges": ranges})

    def make(*args: Any) -> http.server.BaseHTTPRequestHandler:
        return handler(*args, directory=str(tmp_path))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path, ranges
    finally:
        server.shutdown()
        server.server_close()


def test_load_over_http_by_ranges(served: tuple[str, Path, list[str]]) -> None:
    base, folder, ranges = served
    array = np.random.default_rng(0).standard_normal(4_000_000)  # 32 MB: 8 chunks
    zoblib.dump({"x": array, "name": "w"}, str(folder / "model.pkl"), compress=3)
    loaded = zoblib.load(f"{base}/model.pkl")
    assert loaded["name"] == "w"
    np.testing.assert_array_equal(loaded["x"], array)
    zoblib.verify(f"{base}/model.pkl")
    ranges.clear()
    lazy = zoblib.load(f"{base}/model.pkl", mmap_mode="r")["x"]
    assert isinstance(lazy, LazyArray) and ranges == ["bytes=-262144"]
    np.testing.assert_array_equal(lazy[2_000_000:2_000_050], array[2_000_000:2_000_050])
    assert len(ranges) == 2  # the tail, then the one chunk


def test_a_zarr_store_over_http(served: tuple[str, Path, list[str]]) -> None:
    base, folder, _ = served
    zoblib.dump({"x": np.arange(1 << 20)}, str(folder / "model.zarr"), compress=3)
    np.testing.assert_array_equal(zoblib.load(f"{base}/model.zarr")["x"], np.arange(1 << 20))
