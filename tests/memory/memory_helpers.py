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
