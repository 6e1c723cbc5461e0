"""Caches of the first layout (``<func>/<args id>/``, written by zoblib before hash-prefix folders
and the index) still hit, list, get indexed, prune and clear: ``tests/data/old_memory_cache``,
written by ``tests/data/make_old_memory_cache.py`` with the zoblib of that layout.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from zoblib.memory import Memory
from zoblib.memory.index import INDEX_NAME
from zoblib.memory.local_store import PREFIX_LENGTH, LocalStoreBackend

DATA = Path(__file__).parents[1] / "data"


def _golden_module() -> ModuleType:
    # Imported under its own name: the cached functions' ids (and so their folders) use it.
    spec = importlib.util.spec_from_file_location("make_old_memory_cache", DATA / "make_old_memory_cache.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.get("make_old_memory_cache") or importlib.util.module_from_spec(spec)
    if "make_old_memory_cache" not in sys.modules:
        sys.modules["make_old_memory_cache"] = module
        spec.loader.exec_module(module)
    return module


golden = _golden_module()


@pytest.fixture
def old_cache(tmp_path: Path) -> Path:
    copy = tmp_path / "old_cache"
    shutil.copytree(golden.CACHE, copy)  # copy2: the entries' mtimes come along
    return copy


def _store(memory: Memory) -> LocalStoreBackend:
    assert isinstance(memory.store_backend, LocalStoreBackend)
    return memory.store_backend


def test_the_golden_cache_is_of_the_first_layout() -> None:
    store = golden.CACHE / "zoblib"
    entries = [p for p in store.rglob("metadata.json")]
    assert len(entries) == len(golden.CALLS) + 1
    assert all(len(p.parent.parent.name) > PREFIX_LENGTH for p in entries)  # no prefix folder
    assert not (store / INDEX_NAME).exists()


def test_old_entries_hit_with_their_values(old_cache: Path) -> None:
    memory = Memory(old_cache, verbose=0)
    for func, argument, _ in golden.CALLS:
        cached = memory.cache(func)
        assert cached.cache_status(argument).hit, (func.__name__, argument)
        result = cached(argument)
        expected = func(argument)
        if isinstance(expected, np.ndarray):
            np.testing.assert_array_equal(result, expected)
        else:
            assert result == expected
    zipped = Memory(old_cache, verbose=0, backend_options={"container": "zip"}).cache(golden.short_list)
    assert zipped.cache_status(7).hit and zipped(7) == list(range(7))


def test_old_entries_are_listed_with_their_hits_and_indexed(old_cache: Path) -> None:
    memory = Memory(old_cache, verbose=0)
    store = _store(memory)
    hits = {}
    for func, argument, count in golden.CALLS:
        cached = memory.cache(func)
        hits[cached._key((argument,), {})[1]] = count
    listed = {s.args_id: s.hits for f in store.list_functions() for s in store.iter_entries(f)}
    assert len(listed) == len(golden.CALLS) + 1
    assert all(listed[key] == count for key, count in hits.items())
    truth = sum(s.size for f in store.list_functions() for s in store.iter_entries(f))
    assert store.totals() == (len(golden.CALLS) + 1, truth)  # the first use builds the index
    assert (Path(store.root) / INDEX_NAME).is_file()


def test_old_and_new_entries_are_pruned_together_least_recently_used_first(old_cache: Path) -> None:
    memory = Memory(old_cache, verbose=0)
    square = memory.cache(golden.square)
    square(100)  # a new entry, in a hash-prefix folder: the most recent
    key = square._key((100,), {})[1]
    assert Path(square.cache_status(100).location).parent.name == key[:PREFIX_LENGTH]
    square(3)  # a hit on an old entry: recent too
    removed = memory.reduce_size(items_limit=2)
    assert len(removed) == len(golden.CALLS) + 1 + 1 - 2
    assert square.check_call_in_cache(100) and square.check_call_in_cache(3)
    assert _store(memory).totals() == (2, sum(e.size for e in memory.list_entries()))


def test_clear_call_and_clear_remove_old_entries(old_cache: Path) -> None:
    memory = Memory(old_cache, verbose=0)
    square = memory.cache(golden.square)
    old_folder = Path(square.cache_status(4).location)
    assert old_folder.is_dir()
    assert square.clear_call(4) is True
    assert not old_folder.exists() and not square.check_call_in_cache(4)
    assert square.check_call_in_cache(5)
    memory.clear(warn=False)
    assert memory.list_entries() == []
    assert _store(memory).totals() == (0, 0)
