"""A read-only cache: hits still load, maintenance raises ``CacheError``, cached calls only warn.

Tests run as root, which ignores file permissions, so caches are made read-only with a
read-only bind mount: the kernel refuses every change (``EROFS``), whoever asks.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from memory_helpers import Counter

from zoblib.errors import CacheEntryWarning, CacheError, CacheWarning, ZoblibError
from zoblib.memory import Memory

ReadOnly = Callable[[Path], contextlib.AbstractContextManager[None]]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def _can_mount(tmp_path_factory: pytest.TempPathFactory) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("making a folder read-only for every user takes a (bind) mount, which needs root")
    probe = tmp_path_factory.mktemp("mount-probe")
    done = _run("mount", "--bind", str(probe), str(probe))
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here (no CAP_SYS_ADMIN?): {done.stderr.strip()}")
    _run("umount", "-l", str(probe))


@pytest.fixture
def read_only(_can_mount: None) -> Iterator[ReadOnly]:
    """``with read_only(folder):`` makes ``folder`` read-only, for root too, until the block ends."""
    mounted: list[Path] = []

    @contextlib.contextmanager
    def make_read_only(folder: Path) -> Iterator[None]:
        for command in (
            ("mount", "--bind", str(folder), str(folder)),
            ("mount", "-o", "remount,bind,ro", str(folder)),
        ):
            done = _run(*command)
            assert done.returncode == 0, done.stderr
            if command[1] == "--bind":
                mounted.append(folder)
        try:
            yield
        finally:
            # Lazy: memory maps of cached results may still hold files of the mount.
            _run("umount", "-l", str(folder))
            mounted.remove(folder)

    yield make_read_only
    for folder in mounted:  # a test that failed inside the block
        _run("umount", "-l", str(folder))


def _cached_square(memory: Memory, counter: Counter) -> Any:
    def square(x: int) -> np.ndarray:
        counter(x)
        return np.arange(x, dtype=np.float64) ** 2

    return memory.cache(square)


def test_the_mount_really_is_read_only_for_root(tmp_path: Path, read_only: ReadOnly) -> None:
    with read_only(tmp_path), pytest.raises(OSError) as caught:
        (tmp_path / f"probe-{uuid.uuid4().hex}").write_text("x")
    assert caught.value.errno == errno.EROFS


@pytest.mark.parametrize("mmap_mode", [None, "r"])
@pytest.mark.parametrize("container", ["zarr", "zip"])
def test_hits_load_from_a_read_only_cache_without_warnings(
    location: Path, counter: Counter, read_only: ReadOnly, mmap_mode: str | None, container: str
) -> None:
    options = {"container": container}
    square = _cached_square(Memory(location, verbose=0, backend_options=options), counter)
    square(5)
    with read_only(location), warnings.catch_warnings():
        warnings.simplefilter("error")
        # A new Memory and function, as another user or process sharing the cache would make.
        memory = Memory(location, verbose=0, mmap_mode=mmap_mode, backend_options=options)
        square = _cached_square(memory, counter)
        assert np.array_equal(square(5), np.arange(5.0) ** 2)
        assert np.array_equal(square.call_and_shelve(5).get(), np.arange(5.0) ** 2)
        assert square.check_call_in_cache(5)
        assert square.cache_status(5).hit
        assert [e.size > 0 for e in memory.list_entries()] == [True]
    assert len(counter) == 1


def test_misses_on_a_read_only_cache_compute_and_warn(
    location: Path, counter: Counter, read_only: ReadOnly
) -> None:
    square = _cached_square(Memory(location, verbose=0), counter)
    square(2)
    with read_only(location):
        with pytest.warns(CacheEntryWarning, match="could not store the result"):
            assert np.array_equal(square(3), np.arange(3.0) ** 2)
        assert len(counter) == 2


def _assert_read_only_error(error: CacheError, location: Path) -> None:
    store_folder = str(location / "zoblib")  # the store's location, as joblib's errors name it
    assert isinstance(error, OSError)
    assert isinstance(error, ZoblibError)
    assert error.errno == errno.EROFS
    assert error.location == store_folder
    assert f"read-only cache at {store_folder!r}" in str(error)
    assert "read-only file system" in str(error)
    assert isinstance(error.__cause__, OSError)


def test_clear_of_a_read_only_cache_raises_cache_error(
    location: Path, counter: Counter, read_only: ReadOnly
) -> None:
    memory = Memory(location, verbose=0)
    square = _cached_square(memory, counter)
    square(2)
    with read_only(location):
        with pytest.raises(CacheError, match=r"^cannot clear the read-only cache at ") as caught:
            memory.clear(warn=False)
        _assert_read_only_error(caught.value, location)
        with pytest.raises(CacheError, match=r"cannot clear .*square in the read-only cache") as caught:
            square.clear(warn=False)
        _assert_read_only_error(caught.value, location)
        with pytest.raises(CacheError, match="cannot remove an entry from the read-only cache") as caught:
            square.call_and_shelve(2).clear()
        _assert_read_only_error(caught.value, location)
        # Existing ``except OSError`` clauses still catch it.
        with pytest.raises(OSError):
            memory.clear(warn=False)
        square(2)
    assert len(counter) == 1, "the entry survived every attempt"


def test_reduce_size_of_a_read_only_cache_raises_cache_error(
    location: Path, counter: Counter, read_only: ReadOnly
) -> None:
    memory = Memory(location, verbose=0)
    square = _cached_square(memory, counter)
    for x in range(3):
        square(x)
    with read_only(location):
        with pytest.raises(CacheError, match="cannot remove entries from the read-only cache") as caught:
            memory.reduce_size(items_limit=1)
        _assert_read_only_error(caught.value, location)
        assert "2 of 2 entries to evict could not be removed" in str(caught.value)
        assert memory.reduce_size(items_limit=3) == []  # nothing to remove: no error
    assert len(memory.list_entries()) == 3


def test_a_rejected_entry_of_a_read_only_cache_is_recomputed_with_a_warning(
    location: Path, counter: Counter, read_only: ReadOnly
) -> None:
    square = _cached_square(Memory(location, verbose=0), counter)
    square(2)
    memory = Memory(location, verbose=0)
    rejecting = memory.cache(square.func, cache_validation_callback=lambda metadata: False)
    with read_only(location), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert not rejecting.check_call_in_cache(2)
        assert np.array_equal(rejecting(2), np.arange(2.0) ** 2)
    messages = [str(w.message) for w in seen if issubclass(w.category, CacheWarning)]
    assert sum("cannot remove an expired entry from the read-only cache" in m for m in messages) == 2
    assert len(counter) == 2


def test_eviction_after_a_write_warns_when_entries_cannot_be_removed(
    location: Path, counter: Counter, read_only: ReadOnly
) -> None:
    # A shared cache where another user's results cannot be removed but ours can be written.
    others = Memory(location, verbose=0)
    theirs = others.cache(np.arange)
    theirs(3)
    theirs(4)
    their_folder = Path(theirs.list_entries()[0].location).parent.parent  # <func>/<2 hex>/<entry>
    limited = Memory(location, verbose=0, items_limit=1)
    square = _cached_square(limited, counter)
    with read_only(their_folder):
        with pytest.warns(CacheWarning, match="2 of 2 entries to evict could not be removed") as seen:
            assert np.array_equal(square(3), np.arange(3.0) ** 2)
        assert "cannot remove entries from the read-only cache" in str(seen[0].message)
        assert square.check_call_in_cache(3), "the entry just written stays"
        # Ours can go: the next write evicts the older of ours, and warns about theirs again.
        with pytest.warns(CacheWarning, match="2 of 3 entries to evict could not be removed"):
            square(4)
        assert not square.check_call_in_cache(3)
        assert square.check_call_in_cache(4)
    assert len(counter) == 2
    assert len(theirs.list_entries()) == 2


def test_a_read_only_cache_without_gitignore_still_works(
    location: Path, counter: Counter, read_only: ReadOnly
) -> None:
    # A cache written before zoblib wrote .gitignore files, now read-only.
    _cached_square(Memory(location, verbose=0), counter)(2)
    (location / ".gitignore").unlink()
    with read_only(location):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            square = _cached_square(Memory(location, verbose=0), counter)
            assert np.array_equal(square(2), np.arange(2.0) ** 2), "a hit writes nothing"
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert np.array_equal(square(3), np.arange(3.0) ** 2)
    messages = [str(w.message) for w in seen]
    assert any(m.startswith(f"Unable to write {location / '.gitignore'}.") for m in messages), messages
    assert any("could not store the result" in m for m in messages), messages
    assert len(counter) == 2
    assert not (location / ".gitignore").exists()


def test_hits_on_a_read_only_cache_load_and_are_not_counted(
    location: Path, counter: Counter, read_only: ReadOnly
) -> None:
    square = _cached_square(Memory(location, verbose=0), counter)
    square(5), square(5)  # one hit counted while writable
    with read_only(location), warnings.catch_warnings():
        warnings.simplefilter("error")
        memory = Memory(location, verbose=0)
        square = _cached_square(memory, counter)
        for _ in range(3):
            assert np.array_equal(square(5), np.arange(5.0) ** 2)
        assert memory.store_backend is not None
        assert [s.hits for s in memory.store_backend.list_entries(square.func_id)] == [1]
    assert len(counter) == 1


def test_clear_call_on_a_read_only_cache_raises_cache_error(location: Path, read_only: ReadOnly) -> None:
    memory = Memory(location, verbose=0)
    cached = memory.cache(abs)
    cached(-1)
    with read_only(location), pytest.raises(CacheError):
        cached.clear_call(-1)
    assert cached.check_call_in_cache(-1)
