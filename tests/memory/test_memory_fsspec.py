"""Caches on fsspec file systems: ``memory://`` and the session's S3 server (moto, on loopback)."""

from __future__ import annotations

import pickle
import uuid
import warnings
from typing import Any

import numpy as np
import pytest
from memory_helpers import Counter

from s3_server import S3Server
from zoblib.errors import CacheEntryWarning
from zoblib.memory import MemorizedResult, Memory, MissReason

fsspec = pytest.importorskip("fsspec")


@pytest.fixture(params=["memory", "s3"])
def remote_memory(request: pytest.FixtureRequest) -> Memory:
    if request.param == "memory":
        return Memory(f"memory://{uuid.uuid4().hex}", verbose=0)
    s3: S3Server = request.getfixturevalue("s3")  # the session's server (tests/conftest.py)
    return Memory(s3.url("cache"), verbose=0, backend_options=s3.options)


def test_hit_miss_and_listing(remote_memory: Memory, counter: Counter) -> None:
    @remote_memory.cache
    def f(n: int) -> np.ndarray:
        counter(n)
        return np.arange(n)

    np.testing.assert_array_equal(f(1000), np.arange(1000))
    np.testing.assert_array_equal(f(1000), np.arange(1000))
    f(10)
    assert len(counter) == 2
    assert f.check_call_in_cache(10) and not f.check_call_in_cache(11)
    (function,) = remote_memory.list_functions()
    assert function.entries == 2 and function.size > 0
    entries = remote_memory.list_entries()
    assert sorted(e.input_args["n"] for e in entries) == ["10", "1000"]
    assert f.cache_status(10).hit and f.cache_status(12).reason is MissReason.NEW_ARGUMENTS


def test_shelve_clear_and_reduce_size(remote_memory: Memory, counter: Counter) -> None:
    @remote_memory.cache
    def f(x: int) -> int:
        counter(x)
        return x * 3

    reference = f.call_and_shelve(2)
    assert isinstance(reference, MemorizedResult)
    assert pickle.loads(pickle.dumps(reference)).get() == 6
    for x in range(4):
        f(x)
    assert len(counter) == 4
    remote_memory.reduce_size(items_limit=2)
    assert len(remote_memory.list_entries()) == 2
    f.clear(warn=False)
    assert remote_memory.list_entries() == []
    f(1)
    remote_memory.clear(warn=False)
    assert remote_memory.list_functions() == []


def test_mmap_mode_on_a_remote_store_loads_whole_arrays(remote_memory: Memory) -> None:
    f = remote_memory.cache(lambda n: np.ones(n), mmap_mode="r")
    f(10_000)
    result = f(10_000)
    assert type(result) is np.ndarray and result.sum() == 10_000


def test_corrupted_remote_entry_warns_and_recomputes(remote_memory: Memory, counter: Counter) -> None:
    @remote_memory.cache
    def f(n: int) -> np.ndarray:
        counter(n)
        return np.arange(n)

    f(100_000)
    store: Any = remote_memory.store_backend
    (entry,) = remote_memory.list_entries()
    path = f"{store.root}/{entry.func_id}/{entry.args_id}/output.pkl"
    data = bytearray(store.fs.cat_file(path))
    data[len(data) // 2] ^= 0xFF
    store.fs.pipe_file(path, bytes(data))
    with pytest.warns(CacheEntryWarning):
        np.testing.assert_array_equal(f(100_000), np.arange(100_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(f(100_000), np.arange(100_000))
    assert len(counter) == 2
