"""Listing what a cache holds, why calls miss, constant-time lookups, limits and backends."""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from memory_helpers import Counter

from zoblib.errors import UnknownStoreBackendError
from zoblib.memory import (
    STORE_BACKENDS,
    LocalStoreBackend,
    Memory,
    MissReason,
    StoreBackend,
    expires_after,
    register_store_backend,
)
from zoblib.memory.eviction import parse_bytes


def square(x: int) -> int:
    return x * x


def cube(x: int) -> int:
    return x * x * x


def test_list_functions_and_entries(memory: Memory) -> None:
    f, g = memory.cache(square), memory.cache(cube)
    for x in range(3):
        f(x)
    g(5)
    functions = {info.func_id: info for info in memory.list_functions()}
    assert set(functions) == {f.func_id, g.func_id}
    assert f.func_id == "test_memory_catalog/square"
    assert functions[f.func_id].entries == 3 and functions[g.func_id].entries == 1
    assert functions[f.func_id].size > 0 and functions[f.func_id].last_access is not None
    entries = memory.list_entries(f)
    assert sorted(e.input_args["x"] for e in entries) == ["0", "1", "2"]
    for entry in entries:
        assert entry.size > 0 and entry.duration is not None and entry.computed_at is not None
        assert Path(entry.location).is_dir() and entry.func_id == f.func_id
    assert len(memory.list_entries()) == 4
    assert len(memory.list_entries(square)) == 3 == len(memory.list_entries(f.func_id))
    assert [e.args_id for e in f.list_entries()] != []
    assert Memory(None).list_functions() == [] and Memory(None).list_entries() == []


def test_last_access_is_updated_on_hits(memory: Memory) -> None:
    f = memory.cache(square)
    f(1)
    f(2)
    first = {e.input_args["x"]: e.last_access for e in memory.list_entries()}
    time.sleep(0.02)
    f(1)
    second = {e.input_args["x"]: e.last_access for e in memory.list_entries()}
    assert second["1"] > first["1"] and second["2"] == first["2"]
    assert [e.input_args["x"] for e in memory.list_entries()] == ["2", "1"]  # least recent first


def test_cache_status_tells_why_a_call_misses(location: Path, counter: Counter) -> None:
    memory = Memory(location, verbose=0)
    clock = {"valid": True}

    @memory.cache(cache_validation_callback=lambda metadata: clock["valid"])
    def f(x: int) -> int:
        counter(x)
        return x

    status = f.cache_status(1)
    assert not status and status.reason is MissReason.NEW_ARGUMENTS and "new arguments" in status.detail
    f(1)
    assert f.last_status is not None and f.last_status.reason is MissReason.NEW_ARGUMENTS
    assert f.cache_status(1).hit and f.cache_status(1).reason is None
    f(1)
    assert f.last_status is not None and f.last_status.hit
    clock["valid"] = False
    assert f.cache_status(1).reason is MissReason.EXPIRED
    assert len(counter) == 1  # cache_status computes nothing
    os.remove(Path(next(iter(f.list_entries())).location) / "metadata.json")
    assert f.cache_status(1).reason is MissReason.UNREADABLE


def test_hit_does_not_list_directories(
    memory: Memory, monkeypatch: pytest.MonkeyPatch, counter: Counter
) -> None:
    @memory.cache(mmap_mode="r")
    def f(x: int) -> np.ndarray:
        counter(x)
        return np.full(100_000, x)

    for x in range(50):
        f(x)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cache hit must not list a directory")

    monkeypatch.setattr(os, "listdir", forbidden)
    monkeypatch.setattr(os, "scandir", forbidden)
    monkeypatch.setattr(os, "walk", forbidden)
    for x in range(50):
        assert f(x)[0] == x
        assert f.check_call_in_cache(x)
        assert f.call_and_shelve(x).get()[0] == x
    assert len(counter) == 50


def test_reduce_size_by_items_keeps_most_recently_used(memory: Memory) -> None:
    f = memory.cache(square)
    for x in range(5):
        f(x)
        time.sleep(0.01)
    f(0)  # now the most recently used
    removed = memory.reduce_size(items_limit=2)
    assert sorted(r.args_id for r in removed) == sorted(
        e.args_id for e in memory.list_entries() + removed if e.args_id in {r.args_id for r in removed}
    )
    assert sorted(e.input_args["x"] for e in memory.list_entries()) == ["0", "4"]
    assert f.check_call_in_cache(0) and f.check_call_in_cache(4) and not f.check_call_in_cache(1)


def test_reduce_size_by_bytes_is_lru(memory: Memory) -> None:
    f = memory.cache(lambda n: np.zeros(n, dtype=np.uint8))
    for n in (100_000, 100_001, 100_002):
        f(n)
        time.sleep(0.01)
    f(100_000)
    memory.reduce_size(bytes_limit="250K")
    assert sorted(e.input_args["n"] for e in memory.list_entries()) == ["100000", "100002"]
    memory.reduce_size(bytes_limit=150_000)
    assert [e.input_args["n"] for e in memory.list_entries()] == ["100000"]
    memory.reduce_size(bytes_limit=0)
    assert memory.list_entries() == []


def test_reduce_size_by_age(memory: Memory) -> None:
    f = memory.cache(square)
    f(1)
    f(2)
    (old,) = [e for e in memory.list_entries() if e.input_args["x"] == "1"]
    past = time.time() - 3600
    os.utime(Path(old.location) / "metadata.json", (past, past))
    memory.reduce_size(age_limit=datetime.timedelta(minutes=30))
    assert [e.input_args["x"] for e in memory.list_entries()] == ["2"]
    with pytest.raises(ValueError):
        memory.reduce_size(age_limit=datetime.timedelta(seconds=-1))


def test_bytes_limit_is_enforced_after_each_write(location: Path) -> None:
    memory = Memory(location, verbose=0, bytes_limit="250K")
    f = memory.cache(lambda n: np.zeros(n, dtype=np.uint8))
    for n in range(100_000, 100_006):
        f(n)
        time.sleep(0.01)
        assert sum(e.size for e in memory.list_entries()) <= 250 * 1024
    assert sorted(e.input_args["n"] for e in memory.list_entries()) == ["100004", "100005"]
    # A result bigger than the limit is kept (it was just written) until the next write.
    big = f(400_000)
    assert big.shape == (400_000,)
    assert [e.input_args["n"] for e in memory.list_entries()] == ["400000"]


def test_items_and_age_limits_are_enforced_after_writes(location: Path) -> None:
    memory = Memory(location, verbose=0, items_limit=3, age_limit=datetime.timedelta(hours=1))
    f = memory.cache(square)
    for x in range(6):
        f(x)
        time.sleep(0.01)
    assert sorted(e.input_args["x"] for e in memory.list_entries()) == ["3", "4", "5"]
    assert memory.reduce_size() != [] or len(memory.list_entries()) == 3


def test_parse_bytes() -> None:
    assert parse_bytes("1G") == 1 << 30 and parse_bytes("10k") == 10240 and parse_bytes("5") == 5
    for bad in ("lots", "-1M"):
        with pytest.raises(ValueError):
            parse_bytes(bad)


def test_expires_after_callback() -> None:
    callback = expires_after(seconds=10)
    assert callback({"time": time.time()}) and not callback({"time": time.time() - 11})
    assert not callback({})


class LoggingStore(LocalStoreBackend):
    """A local store that records the entries it loads."""

    loads: ClassVar[list[str]] = []

    def load_output(self, func_id: str, args_id: str, mmap_mode: str | None) -> Any:
        output = super().load_output(func_id, args_id, mmap_mode)
        type(self).loads.append(args_id)
        return output


def test_register_store_backend(tmp_path: Path) -> None:
    register_store_backend("logging", LoggingStore)
    assert STORE_BACKENDS["logging"] is LoggingStore
    memory = Memory(tmp_path, backend="logging", verbose=0)
    f = memory.cache(square)
    f(3)
    f(3)
    assert len(LoggingStore.loads) == 1
    with pytest.raises(ValueError):
        register_store_backend("bad", dict)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        STORE_BACKENDS["x"] = LoggingStore  # type: ignore[index]


def test_unknown_backend_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownStoreBackendError, match=r"known backends: .*local") as info:
        Memory(tmp_path, backend="nope")
    assert isinstance(info.value, ValueError)


def test_incomplete_store_backend_fails_at_construction() -> None:
    class Incomplete(StoreBackend):
        def load_output(self, func_id: str, args_id: str, mmap_mode: str | None) -> Any:
            return None

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]
