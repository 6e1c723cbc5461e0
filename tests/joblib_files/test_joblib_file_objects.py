"""joblib's files through file objects, as joblib.load accepts them: in memory, open files,
pipes and sockets (which cannot seek), for every compressor."""

from __future__ import annotations

import io
import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from joblib_helpers import COMPRESSORS, assert_alike, many_arrays

import zoblib

SETTINGS: list[Any] = [0, *((c, 3) for c in COMPRESSORS)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    folder = tmp_path_factory.mktemp("joblib-files")
    value = many_arrays()
    made = {}
    for setting in SETTINGS:
        path = folder / f"{setting}.pkl"
        joblib.dump(value, path, compress=setting)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            made[str(setting)] = (path, joblib.load(path))
    return made


def _ids() -> list[str]:
    return [str(s) for s in SETTINGS]


@pytest.mark.parametrize("setting", _ids())
def test_from_memory(files: dict[str, tuple[Path, Any]], setting: str) -> None:
    path, expected = files[setting]
    buffer = io.BytesIO(path.read_bytes())
    buffer.seek(17)  # read from the start wherever the buffer stands, as zoblib's own archives
    assert_alike(zoblib.load(buffer), expected)


@pytest.mark.parametrize("setting", _ids())
def test_from_an_open_file(files: dict[str, tuple[Path, Any]], setting: str) -> None:
    path, expected = files[setting]
    with open(path, "rb") as file:
        assert_alike(zoblib.load(file), expected)
    with open(path, "rb", buffering=0) as raw:
        assert_alike(zoblib.load(raw), expected)


@pytest.mark.parametrize("setting", _ids())
def test_from_a_pipe(files: dict[str, tuple[Path, Any]], setting: str) -> None:
    path, expected = files[setting]
    read_end, write_end = os.pipe()

    def write() -> None:
        with os.fdopen(write_end, "wb") as writer:
            writer.write(path.read_bytes())

    thread = threading.Thread(target=write)
    thread.start()
    with os.fdopen(read_end, "rb") as reader:
        assert not reader.seekable()
        loaded = zoblib.load(reader)
    thread.join()
    assert_alike(loaded, expected)


@pytest.mark.parametrize("setting", ["0", "('gzip', 3)", "('bz2', 3)"])
def test_from_a_socket(files: dict[str, tuple[Path, Any]], setting: str) -> None:
    path, expected = files[setting]
    sending, receiving = socket.socketpair()
    with sending, receiving:

        def send() -> None:
            sending.sendall(path.read_bytes())
            sending.shutdown(socket.SHUT_WR)

        thread = threading.Thread(target=send)
        thread.start()
        with receiving.makefile("rb") as stream:
            loaded = zoblib.load(stream)
        thread.join()
    assert_alike(loaded, expected)


def test_mmap_mode_on_memory_warns_as_joblib(files: dict[str, tuple[Path, Any]]) -> None:
    path, _ = files["0"]
    with pytest.warns(UserWarning) as ours:
        loaded = zoblib.load(io.BytesIO(path.read_bytes()), mmap_mode="r")
    with pytest.warns(UserWarning) as theirs:
        expected = joblib.load(io.BytesIO(path.read_bytes()), mmap_mode="r")
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    assert type(loaded["big"]) is np.ndarray
    assert_alike(loaded, expected)  # byte orders kept, as mmap_mode was asked for


def test_a_file_on_a_socket_left_open_is_not_waited_on(files: dict[str, tuple[Path, Any]]) -> None:
    # The pickle says where it ends: nothing past it is waited for. (A compressed stream on a
    # socket left open is another matter: Python's gzip, bz2 and lzma readers wait for a next
    # stream after the last, for joblib's load too.)
    path, expected = files["0"]
    sending, receiving = socket.socketpair()
    with sending, receiving:
        thread = threading.Thread(target=sending.sendall, args=(path.read_bytes(),))
        thread.start()  # the socket stays open after
        receiving.settimeout(20)  # a wait fails the test instead of hanging it
        with receiving.makefile("rb") as stream:
            loaded = zoblib.load(stream)
        thread.join()
    assert_alike(loaded, expected)
