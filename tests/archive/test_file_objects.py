"""dump and load through file objects, as joblib users write them: compressed file objects,
pipes, sockets and in-memory buffers, with joblib's return values and warnings."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

import zoblib

COMPRESSED_FILES: list[Callable[..., IO[bytes]]] = [gzip.GzipFile, bz2.BZ2File, lzma.LZMAFile]
VALUES: list[Any] = [np.random.default_rng(0).random((400, 300)), "some data", {"a": np.arange(10**5)}]


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    if isinstance(left, np.ndarray):
        return bool(np.array_equal(left, right))
    return bool(left == right)


@pytest.mark.parametrize("opener", COMPRESSED_FILES, ids=lambda o: o.__name__)
@pytest.mark.parametrize("value", VALUES, ids=["array", "str", "dict"])
def test_dump_into_a_compressed_file_object(
    tmp_path: Path, opener: Callable[..., IO[bytes]], value: Any
) -> None:
    path = tmp_path / "test.pkl"
    with opener(path, "wb") as file:
        assert zoblib.dump(value, file) is None
    with opener(path, "rb") as file:
        assert _equal(zoblib.load(file), value)
    # The compressed stream is recognised by its magic number, from a raw file or a path.
    with open(path, "rb") as file:
        assert _equal(zoblib.load(file), value)
    assert _equal(zoblib.load(path), value)


def test_a_damaged_compressed_stream_is_an_archive_error(tmp_path: Path) -> None:
    path = tmp_path / "test.pkl.gz"
    with gzip.GzipFile(path, "wb") as file:
        zoblib.dump(VALUES[0], file)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(zoblib.ArchiveError) as caught:
        zoblib.load(path)
    assert str(path) in str(caught.value)


def _serve(data: bytes, write: Callable[[bytes], Any]) -> threading.Thread:
    thread = threading.Thread(target=write, args=(data,))
    thread.start()
    return thread


def test_load_from_a_pipe(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    zoblib.dump({"x": VALUES[0]}, buffer)
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as writer, os.fdopen(read_end, "rb") as reader:
        thread = _serve(buffer.getvalue(), lambda data: (writer.write(data), writer.close()))
        assert not reader.seekable()
        loaded = zoblib.load(reader)
        thread.join()
    np.testing.assert_array_equal(loaded["x"], VALUES[0])


def test_dump_into_and_load_from_a_socket() -> None:
    sending, receiving = socket.socketpair()
    with sending, receiving:

        def send(value: Any) -> None:
            with sending.makefile("wb") as stream:
                zoblib.dump(value, stream)
            sending.shutdown(socket.SHUT_WR)

        thread = _serve(VALUES[2], send)  # type: ignore[arg-type]
        with receiving.makefile("rb") as stream:
            loaded = zoblib.load(stream)
        thread.join()
    assert _equal(loaded, VALUES[2])


def test_dump_into_a_pipe() -> None:
    read_end, write_end = os.pipe()
    result: list[Any] = []
    with os.fdopen(read_end, "rb") as reader:
        thread = threading.Thread(target=lambda: result.append(zoblib.load(reader)))
        thread.start()
        with os.fdopen(write_end, "wb") as writer:
            assert zoblib.dump(VALUES[2], writer) is None
        thread.join()
    assert _equal(result[0], VALUES[2])


def test_mmap_mode_on_file_objects_warns_as_joblib(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    zoblib.dump(VALUES[0], buffer)
    with pytest.warns(UserWarning) as caught:
        loaded = zoblib.load(buffer, mmap_mode="r+")
    assert [str(w.message) for w in caught] == [
        'In memory persistence is not compatible with mmap_mode "r+" flag passed. '
        "mmap_mode option will be ignored."
    ]
    assert type(loaded) is np.ndarray
    buffer.write(b"more")  # the reader let go of the buffer: it can grow again
    path = tmp_path / "test.pkl"
    with gzip.GzipFile(path, "wb") as file:
        zoblib.dump(VALUES[0], file)
    with gzip.GzipFile(path, "rb") as file:
        expected = f'"{file!r}" is not a raw file, mmap_mode "r+" flag will be ignored.'
        with pytest.warns(UserWarning) as caught:
            zoblib.load(file, mmap_mode="r+")
    assert [str(w.message) for w in caught] == [expected]
    # A real file's object is mapped, without a warning.
    zoblib.dump(VALUES[0], path)
    with open(path, "rb") as file, warnings.catch_warnings():
        warnings.simplefilter("error")
        mapped = zoblib.load(file, mmap_mode="r")
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, VALUES[0])


def test_swapped_arguments_are_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Second argument should be a filename or a file-like object"):
        zoblib.dump("foo", {})  # type: ignore[arg-type]


def test_loading_a_stream_holds_one_copy_of_the_data(tmp_path: Path) -> None:
    # A pipe is spooled to a temporary file and read from there: peak memory is the loaded
    # array, not the stream's bytes and the array. Measured in a fresh process.
    path = tmp_path / "big.pkl"
    nbytes = 256 << 20
    zoblib.dump(np.ones(nbytes // 8), path)
    script = f"""
import os, resource, threading, zoblib
path = {os.fspath(path)!r}
read_end, write_end = os.pipe()
def send():
    with open(path, "rb") as source, os.fdopen(write_end, "wb") as sink:
        while block := source.read(1 << 20):
            sink.write(block)
threading.Thread(target=send).start()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with os.fdopen(read_end, "rb") as reader:
    value = zoblib.load(reader)
assert value.sum() == value.size
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""
    grown = int(
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    )
    assert grown < 1.3 * nbytes, f"peak grew by {grown / nbytes:.2f}x the data"


def test_load_stops_at_the_end_of_the_archive_on_an_open_socket() -> None:
    # joblib's test_pickle_in_socket: the sender keeps the socket open, and two archives may
    # follow each other on it. load reads one archive's records, not up to end-of-file.
    big = np.random.default_rng(1).random(3_000_000)
    buffer = io.BytesIO()
    zoblib.dump([big, big[:5] * 2], buffer)
    data = buffer.getvalue()
    sending, receiving = socket.socketpair()
    with sending, receiving:
        thread = _serve(data * 2, sending.sendall)
        with receiving.makefile("rb") as stream:
            first = zoblib.load(stream)
            second = zoblib.load(stream)
        thread.join()
        with sending.makefile("wb") as stream:
            zoblib.dump(np.arange(10), stream)
        with receiving.makefile("rb") as stream:
            np.testing.assert_array_equal(zoblib.load(stream), np.arange(10))
    for loaded in (first, second):
        np.testing.assert_array_equal(loaded[0], big)
        np.testing.assert_array_equal(loaded[1], big[:5] * 2)
