"""Small results: one ``output.pickle`` file with a CRC-32 trailer; the rest go to the archive."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from memory_helpers import Counter

import zoblib
from zoblib.errors import CacheEntryWarning
from zoblib.memory import Memory, MissReason
from zoblib.memory.local_store import SMALL_OUTPUT_NAME, SMALL_RESULT_BYTES


class _Point:
    def __init__(self, x: int) -> None:
        self.x = x


def _files(memory: Any) -> set[str]:
    (entry,) = memory.list_entries()
    return {p.name for p in Path(entry.location).iterdir()}


@pytest.mark.parametrize(
    "value",
    [7, [1, 2, 3], {"a": 1.5, "b": (None, "text")}, np.arange(100, dtype=np.float32), b"bytes", _Point(3)],
    ids=["int", "short list", "dict", "small array", "bytes", "object"],
)
def test_a_small_result_is_one_pickle_file(location: Path, counter: Counter, value: Any) -> None:
    def make(_: int) -> Any:
        counter()
        return value

    make.__qualname__ = make.__name__ = f"make_{type(value).__name__}"
    cached = Memory(location, verbose=0).cache(make)
    cached(1)
    assert _files(cached) == {SMALL_OUTPUT_NAME, "metadata.json"}
    again = Memory(location, verbose=0).cache(make)(1)  # a fresh Memory: read from the file
    assert len(counter) == 1
    if isinstance(value, np.ndarray):
        assert again.dtype == value.dtype
        np.testing.assert_array_equal(again, value)
    elif isinstance(value, _Point):
        assert isinstance(again, _Point) and again.x == 3
    else:
        assert again == value and type(again) is type(value)


def test_the_small_file_is_a_pickle_that_joblib_and_zoblib_load(memory: Memory) -> None:
    cached = memory.cache(np.arange)
    cached(5)
    (entry,) = memory.list_entries()
    path = Path(entry.location) / SMALL_OUTPUT_NAME
    np.testing.assert_array_equal(zoblib.load(path), np.arange(5))
    np.testing.assert_array_equal(joblib.load(path), np.arange(5))


def test_results_that_plain_pickle_refuses_go_to_the_archive(memory: Memory, counter: Counter) -> None:
    @memory.cache
    def make_function(x: int) -> Any:
        counter()
        return lambda: x + 1  # plain pickle refuses a lambda: the archive's cloudpickle takes it

    assert make_function(2)() == 3
    assert "output.zarr" in _files(memory)
    assert Memory(memory.location, verbose=0).cache(make_function.func)(2)() == 3
    assert len(counter) == 1


def test_results_bigger_than_the_threshold_go_to_the_archive(location: Path) -> None:
    memory = Memory(location, verbose=0, mmap_mode="r")
    cached = memory.cache(np.arange)
    n = SMALL_RESULT_BYTES // 8 + 1
    cached(n)
    assert "output.zarr" in _files(memory)
    assert isinstance(cached(n), np.memmap)  # only archives memory-map


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "no trailer"])
def test_a_damaged_small_file_warns_and_recomputes(memory: Memory, counter: Counter, damage: str) -> None:
    @memory.cache
    def f(x: int) -> list[int]:
        counter()
        return [x] * 10

    f(4)
    (entry,) = memory.list_entries()
    path = Path(entry.location) / SMALL_OUTPUT_NAME
    data = bytearray(path.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 3] ^= 0xFF
    elif damage == "truncated":
        del data[len(data) // 2 :]
    else:
        del data[-16:]
    path.write_bytes(bytes(data))
    assert f.cache_status(4).reason is MissReason.UNREADABLE
    with pytest.warns(CacheEntryWarning, match="cannot read the cached result"):
        assert f(4) == [4] * 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(4) == [4] * 10
    assert len(counter) == 2
