"""Telling joblib's files from zoblib's archives by content (``zoblib.joblib_format.identify``),
including a zoblib archive inside each compressed stream joblib's files may also be."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import pickletools
import zlib
from pathlib import Path
from typing import Any

import joblib
import lz4.frame
import numpy as np
import pytest

import zoblib
from zoblib.joblib_format import identify, looks_like_pickle
from zoblib.joblib_format.sniffing import _OLD_PROTOCOL_FIRST_OPCODES


def test_the_old_protocol_openers_are_pickletools_s() -> None:
    computed = {
        op.code.encode("latin-1")[0]
        for op in pickletools.opcodes
        if op.proto <= 1
        and op.stack_before == []
        and op.name not in ("GET", "BINGET", "LONG_BINGET", "PUT", "BINPUT", "LONG_BINPUT", "PERSID")
    }
    assert computed == _OLD_PROTOCOL_FIRST_OPCODES


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("value", [None, 1, "s", [1], {"a": 1}, (1, 2), 2.5, b"b", np.arange(2)])
def test_every_pickle_is_told_a_pickle(protocol: int, value: Any) -> None:
    data = pickle.dumps(value, protocol=protocol)
    assert looks_like_pickle(data[:6])
    assert identify(io.BytesIO(data)).kind == "joblib"


@pytest.mark.parametrize(
    "head", [b"", b"\x00", b"PK\x03\x04", b"\x89HDF\r\n", b'{"zarr_format": 3}', b"hello", b"\x80\x09"]
)
def test_other_content_is_left_to_the_containers(head: bytes) -> None:
    assert identify(io.BytesIO(head)).kind == "zoblib"


def test_text_starting_with_x_is_not_a_zlib_stream() -> None:
    from zoblib.archive.containers.streams import compression_of

    assert compression_of(b"xyz") is None
    for level in range(10):
        assert compression_of(zlib.compress(b"data", level)) == "zlib"


@pytest.mark.parametrize("compressor", ["zlib", "gzip", "bz2", "lzma", "xz", "lz4"])
def test_joblib_compressed_files_by_content(tmp_path: Path, compressor: str) -> None:
    path = tmp_path / "renamed.zip"  # a misleading name: content decides
    joblib.dump({"x": np.arange(3)}, path, compress=(compressor, 3))
    found = identify(str(path))
    assert (found.kind, found.compression) == ("joblib", compressor)


OPENERS = {
    "gzip": lambda path: gzip.GzipFile(path, "wb"),
    "bz2": lambda path: bz2.BZ2File(path, "wb"),
    "xz": lambda path: lzma.LZMAFile(path, "wb"),  # noqa: SIM115 - opened in the test's with
    "lzma": lambda path: lzma.LZMAFile(path, "wb", format=lzma.FORMAT_ALONE),  # noqa: SIM115
    "lz4": lambda path: lz4.frame.LZ4FrameFile(path, "wb"),
}


@pytest.mark.parametrize("compressor", sorted(OPENERS))
def test_a_zoblib_archive_in_a_compressed_stream_is_still_zoblib_s(tmp_path: Path, compressor: str) -> None:
    path = tmp_path / "archive.pkl"
    value = {"x": np.arange(1000.0)}
    with OPENERS[compressor](path) as file:
        zoblib.dump(value, file)
    assert identify(str(path)).kind == "zoblib"
    np.testing.assert_array_equal(zoblib.load(path)["x"], value["x"])
    with open(path, "rb") as file:  # and from a stream that cannot seek
        unseekable = io.BufferedReader(_Unseekable(file.read()))
    np.testing.assert_array_equal(zoblib.load(unseekable)["x"], value["x"])


def test_a_zoblib_archive_in_a_zlib_stream(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    zoblib.dump({"x": np.arange(10)}, buffer)
    path = tmp_path / "archive.z"
    path.write_bytes(zlib.compress(buffer.getvalue()))
    assert identify(str(path)).kind == "zoblib"
    np.testing.assert_array_equal(zoblib.load(path)["x"], np.arange(10))


class _Unseekable(io.RawIOBase):
    """Bytes given a few at a time, without seek: a pipe's behaviour."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), len(self._data), 1000)
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def test_an_unseekable_joblib_stream_is_given_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "data.pkl"
    value = {"x": np.arange(100_000), "text": "t"}
    joblib.dump(value, path, compress=("bz2", 9))  # bz2 gives nothing before a whole block
    found = identify(io.BufferedReader(_Unseekable(path.read_bytes())))
    assert (found.kind, found.compression) == ("joblib", "bz2")
    assert isinstance(found.source, io.IOBase)
    assert found.source.read() == path.read_bytes()  # type: ignore[union-attr]
