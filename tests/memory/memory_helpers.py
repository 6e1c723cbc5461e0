"""Functions the memory tests run in other processes (importable by spawned children)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from zoblib.memory import Memory


def slow_square_array(n: int) -> np.ndarray:
    """A result big enough that writing it takes a moment."""
    time.sleep(0.05)
    return np.arange(n, dtype=np.float64) ** 2


def race_worker(location: str, n: int, start_at: float) -> tuple[int, bool]:
    """Call the cached function once, all workers at about the same instant."""
    import warnings

    memory = Memory(location, verbose=0)
    cached = memory.cache(slow_square_array)
    while time.time() < start_at:
        time.sleep(0.001)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any cache warning would fail the worker
        result = cached(n)
    return os.getpid(), bool(np.array_equal(result, np.arange(n, dtype=np.float64) ** 2))


def load_shelved(reference: Any) -> Any:
    """Called in another process with a pickled MemorizedResult."""
    return reference.get()


def add(x: int, y: int = 10) -> int:
    return x + y


class Counter:
    """Counts the calls of the functions a test caches (to tell hits from misses)."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def __call__(self, *args: object) -> None:
        self.calls.append(args)

    def __len__(self) -> int:
        return len(self.calls)


def identity(x: int) -> int:
    return x


def many_writers_worker(location: str, worker: int, calls: int, start_at: float, index: bool) -> list[int]:
    """Write ``calls`` entries (half shared with the other workers), reading each back."""
    memory = Memory(location, verbose=0, backend_options={"index": index})
    cached = memory.cache(identity)
    while time.time() < start_at:
        time.sleep(0.001)
    wrong = []
    for i in range(calls):
        x = i if i % 2 else worker * 100_000 + i  # odd calls: the same for every worker
        if cached(x) != x or cached(x) != x:
            wrong.append(x)
    return wrong


def reader_worker(location: str, keys: list[int], until: float) -> tuple[int, int]:
    """Look keys up until ``until``: each lookup must hit the right value or miss, nothing else."""
    from zoblib.memory.local_store import LocalStoreBackend
    from zoblib.memory.store import EntryNotFoundError

    memory = Memory(location, verbose=0)
    cached = memory.cache(identity)
    store = memory.store_backend
    assert isinstance(store, LocalStoreBackend)
    hits = misses = 0
    while time.time() < until and hits < 3 * len(keys):
        for x in keys:
            key = cached._key((x,), {})[1]
            try:
                value = store.load_output(cached.func_id, key, None)
            except EntryNotFoundError:
                misses += 1
                continue
            # An EntryUnreadableError (a half-visible entry) propagates and fails the test.
            assert value == x, (value, x)
            hits += 1
    return hits, misses


def endless_writer(location: str) -> None:
    """Write entries until killed."""
    memory = Memory(location, verbose=0)
    cached = memory.cache(identity)
    i = 0
    while True:
        cached(1_000_000 + i)
        i += 1
