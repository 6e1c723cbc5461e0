"""The local store's SQLite index: right totals, exact LRU, rebuilt when damaged, reconciled."""

from __future__ import annotations

import datetime
import inspect
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from memory_helpers import endless_writer, identity, many_writers_worker, reader_worker

from zoblib.memory import Memory, local_store
from zoblib.memory import index as index_module
from zoblib.memory.filesystems import file_system_type, is_network_file_system
from zoblib.memory.index import INDEX_NAME
from zoblib.memory.local_store import LocalStoreBackend
from zoblib.memory.store import EntryStat


def _store(memory: Memory) -> LocalStoreBackend:
    store = memory.store_backend
    assert isinstance(store, LocalStoreBackend)
    return store


def _truth(memory: Memory) -> tuple[int, int]:
    """(entries, bytes) read from the folders, not from the index."""
    stats = [s for f in _store(memory).list_functions() for s in _store(memory).iter_entries(f)]
    return len(stats), sum(s.size for s in stats)


def _fill(memory: Memory, n: int, start: int = 0) -> Any:
    cached = memory.cache(identity)
    for x in range(start, start + n):
        cached(x)
    return cached


def test_index_totals_match_the_folders(memory: Memory) -> None:
    _fill(memory, 20)
    memory.cache(identity).clear_call(3)
    assert (Path(_store(memory).root) / INDEX_NAME).is_file()
    totals = _store(memory).totals()
    assert totals == _truth(memory) and totals[0] == 19


def _count_entry_reads(store: LocalStoreBackend, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The args ids of the entries ``store`` reads from their files from now on (a real read)."""
    read: list[str] = []
    original = store._read_entry

    def counting(func_id: str, args_id: str, entry: str, keep_metadata: bool = False) -> EntryStat | None:
        read.append(args_id)
        return original(func_id, args_id, entry, keep_metadata)

    monkeypatch.setattr(store, "_read_entry", counting)
    return read


def test_reduce_size_costs_the_entries_it_removes(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(memory, 200)
    store = _store(memory)
    store.reconcile_index()
    read = _count_entry_reads(store, monkeypatch)
    removed = memory.reduce_size(items_limit=195)
    assert len(removed) == 5
    assert len(read) <= 10, f"{len(read)} entries read to remove 5 of 200"
    assert [e.input_args for e in memory.list_entries()][:1] != []


def test_lru_is_exact_although_some_hits_do_not_reach_the_index(memory: Memory) -> None:
    cached = memory.cache(identity)
    for x in (1, 2, 3, 4):
        cached(x)
        time.sleep(0.02)
    _store(memory).reconcile_index()
    # Hits by a process that keeps no index: only the entries' hits files know of them.
    blind = Memory(memory.location, verbose=0, backend_options={"index": False}).cache(identity)
    blind(1)
    time.sleep(0.02)
    blind(2)
    removed = memory.reduce_size(items_limit=2)
    assert [e.args_id for e in removed] == [cached._key((x,), {})[1] for x in (3, 4)]
    assert cached.check_call_in_cache(1) and cached.check_call_in_cache(2)


def test_hits_reach_the_index_so_eviction_reads_few_entries(
    memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = _fill(memory, 200)
    for x in range(199, -1, -1):  # every entry hit, newest first: write order is now wrong
        cached(x)
        if x >= 185:
            time.sleep(0.01)  # mtimes are coarse (a clock tick): the first hits apart
    store = _store(memory)
    store.reconcile_index()
    read = _count_entry_reads(store, monkeypatch)
    removed = memory.reduce_size(items_limit=190)
    assert [e.args_id for e in removed] == [cached._key((x,), {})[1] for x in range(199, 189, -1)]
    assert len(read) <= 20, f"{len(read)} entries read to remove 10 of 200"


def test_age_limit_through_the_index(memory: Memory) -> None:
    cached = _fill(memory, 4)
    old = time.time() - 3600
    for entry in memory.list_entries():
        for name in ("metadata.json",):
            os.utime(Path(entry.location) / name, (old, old))
    cached(0)  # a hit: this one was used recently
    removed = memory.reduce_size(age_limit=datetime.timedelta(minutes=5))
    assert len(removed) == 3 and cached.check_call_in_cache(0)


def _backdate_copy(source: Path, target: Path, days: float) -> None:
    """Copy ``source`` over ``target`` as ``cp -a`` does, its entries ``days`` old."""
    old = time.time() - days * 86400
    for path in source.rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))
    shutil.copytree(source, target, dirs_exist_ok=True)  # copy2: mtimes kept


def test_age_limit_sees_entries_made_old_behind_the_index(tmp_path: Path) -> None:
    # The same calls cached on two hosts; the older host's cache is copied over the newer one
    # with its mtimes: the index still says "just written", the files say ten days.
    elsewhere, here = Memory(tmp_path / "a", verbose=0), Memory(tmp_path / "b", verbose=0)
    _fill(elsewhere, 6)
    _fill(here, 6)
    _fill(here, 2, start=50)  # only here: recent
    assert _store(here).totals() == _truth(here)
    _backdate_copy(tmp_path / "a", tmp_path / "b", days=10)
    removed = here.reduce_size(age_limit=datetime.timedelta(days=7))
    cached = here.cache(identity)
    assert {e.args_id for e in removed} == {cached._key((x,), {})[1] for x in range(6)}
    assert _store(here).totals() == _truth(here) == (2, _truth(here)[1])


def test_age_and_count_limits_together(tmp_path: Path) -> None:
    elsewhere, here = Memory(tmp_path / "a", verbose=0), Memory(tmp_path / "b", verbose=0)
    _fill(elsewhere, 6)
    _fill(here, 6)
    _fill(here, 2, start=50)
    _backdate_copy(tmp_path / "a", tmp_path / "b", days=10)
    removed = here.reduce_size(items_limit=1, age_limit=datetime.timedelta(days=7))
    assert len(removed) == 7 and _truth(here)[0] == 1
    assert _store(here).totals() == _truth(here)


def test_automatic_age_limit_sees_them_on_its_first_check(tmp_path: Path) -> None:
    elsewhere, here = Memory(tmp_path / "a", verbose=0), Memory(tmp_path / "b", verbose=0)
    _fill(elsewhere, 4)
    _fill(here, 4)
    _backdate_copy(tmp_path / "a", tmp_path / "b", days=10)
    limited = Memory(tmp_path / "b", verbose=0, age_limit=datetime.timedelta(days=7))
    limited.cache(identity)(99)  # a write: the limits are applied
    assert [e.input_args["x"] for e in limited.list_entries()] == ["99"]


def test_iterating_entries_keeps_memory_flat(memory: Memory) -> None:
    cached = _fill(memory, 1500)

    def peak(operation: Any) -> int:
        tracemalloc.start()
        try:
            operation()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def iterate() -> None:
        for _ in memory.iter_entries(cached):
            pass

    def iterate_index() -> None:
        index = _store(memory).entry_index()
        assert index is not None
        for _ in index.by_access():
            pass

    whole = peak(lambda: memory.list_entries(cached))
    assert peak(iterate) * 10 < whole, (peak(iterate), whole)
    assert peak(iterate_index) * 3 < whole


def test_automatic_items_limit_checks_the_index_on_every_write(location: Path) -> None:
    memory = Memory(location, verbose=0, items_limit=5)
    _fill(memory, 12)
    assert _store(memory).totals() == _truth(memory) and _truth(memory)[0] == 5


@pytest.mark.parametrize("damage", ["deleted", "truncated", "garbage", "other schema"])
def test_a_damaged_index_is_rebuilt_from_the_entries(location: Path, damage: str) -> None:
    memory = Memory(location, verbose=0)
    _fill(memory, 10)
    store = _store(memory)
    assert store.totals() is not None
    index_path = Path(store.root) / INDEX_NAME
    store.entry_index().close()  # type: ignore[union-attr]
    if damage == "deleted":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{index_path}{suffix}").unlink(missing_ok=True)
    elif damage == "truncated":
        with sqlite3.connect(index_path) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with open(index_path, "r+b") as file:
            file.truncate(1500)
    elif damage == "garbage":
        Path(f"{index_path}-wal").unlink(missing_ok=True)
        index_path.write_bytes(os.urandom(8192))
    else:
        with sqlite3.connect(index_path) as connection:
            connection.execute("PRAGMA user_version = 99")
    again = Memory(location, verbose=0)
    assert _store(again).totals() == _truth(again) == (10, _truth(memory)[1])
    assert len(again.reduce_size(items_limit=4)) == 6
    assert _store(again).totals() == _truth(again)


def test_entries_written_without_the_index_are_picked_up(
    location: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexed = Memory(location, verbose=0)
    _fill(indexed, 3)
    assert _store(indexed).totals() == (3, _truth(indexed)[1])
    bypass = Memory(location, verbose=0, backend_options={"index": False})
    assert _store(bypass).entry_index() is None and _store(bypass).totals() is None
    _fill(bypass, 4, start=100)
    assert _store(indexed).reconcile_index() > 0  # the changed folders are listed again
    assert _store(indexed).totals() == _truth(indexed) and _truth(indexed)[0] == 7
    # Folders changed in the last RACY_SECONDS are listed every time (coarse mtimes)...
    assert _store(indexed).reconcile_index() > 0
    monkeypatch.setattr(index_module, "RACY_SECONDS", 0.0)
    _store(indexed).reconcile_index()
    assert _store(indexed).reconcile_index() == 0  # ... older ones only when they change


def test_entries_removed_behind_the_index_leave_it(memory: Memory) -> None:
    _fill(memory, 5)
    victim = memory.list_entries()[0]
    shutil.rmtree(victim.location)
    _store(memory).reconcile_index()
    assert _store(memory).totals() == _truth(memory) and _truth(memory)[0] == 4


def test_eviction_does_not_count_entries_removed_behind_the_index(memory: Memory) -> None:
    cached = memory.cache(identity)
    for x in range(10):
        cached(x)
        time.sleep(0.01)
    assert _store(memory).totals() == (10, _truth(memory)[1])  # reconciled: not again for 30 s
    for x in range(3):  # the oldest three, deleted by hand
        shutil.rmtree(cached.cache_status(x).location)
    removed = memory.reduce_size(items_limit=5)
    assert len(removed) == 2 and _truth(memory)[0] == 5
    assert _store(memory).totals() == _truth(memory)


def test_a_store_without_the_index_scans(location: Path) -> None:
    memory = Memory(location, verbose=0, backend_options={"index": False})
    _fill(memory, 6)
    assert len(memory.reduce_size(items_limit=2)) == 4
    assert not (Path(_store(memory).root) / INDEX_NAME).exists()


def test_network_file_systems_get_no_index(
    location: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert file_system_type(str(tmp_path)) is not None  # Linux: the mount table is read
    assert not is_network_file_system(str(tmp_path))
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"90 22 0:50 / {location} rw,relatime shared:2 - nfs4 server:/export rw,vers=4.2\n"
    )
    location.mkdir()
    monkeypatch.setattr("zoblib.memory.filesystems.MOUNTINFO", str(mountinfo))
    assert file_system_type(str(location / "zoblib")) == "nfs4"
    memory = Memory(location, verbose=0)
    _fill(memory, 3)
    assert _store(memory).entry_index() is None
    assert not (Path(_store(memory).root) / INDEX_NAME).exists()
    assert len(memory.reduce_size(items_limit=1)) == 2


def test_listing_is_paged(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "PAGE_ROWS", 3)
    _fill(memory, 10)
    index = _store(memory).entry_index()
    assert index is not None
    by_access = list(index.by_access())
    assert len(by_access) == 10 == len({s.args_id for s in by_access})
    assert [s.last_access for s in by_access] == sorted(s.last_access for s in by_access)
    assert len(list(index.of_function(memory.cache(identity).func_id))) == 10
    assert inspect.isgenerator(memory.iter_entries()) and len(list(memory.iter_entries(identity))) == 10


def _spawn() -> Any:
    return multiprocessing.get_context("spawn")


def test_many_writer_processes_lose_nothing_and_show_no_half_entry(location: Path) -> None:
    # Half the writers keep no index (an older zoblib, a host on NFS): nothing is lost either way.
    workers, calls = 4, 60
    start_at = time.time() + 5.0  # spawned children import zoblib first (slow on a loaded machine)
    context = _spawn()
    with context.Pool(workers + 1) as pool:
        readers = pool.apply_async(reader_worker, (str(location), list(range(1, calls, 2)), start_at + 30.0))
        results = pool.starmap(
            many_writers_worker, [(str(location), w, calls, start_at, w % 2 == 0) for w in range(workers)]
        )
        hits, _ = readers.get(timeout=120)
    assert results == [[]] * workers
    assert hits > 0
    memory = Memory(location, verbose=0)
    expected = workers * (calls // 2) + calls // 2  # each worker's own, and the shared ones
    assert _truth(memory)[0] == expected
    assert _store(memory).totals() == _truth(memory)
    leftovers = [p for p in Path(_store(memory).root).rglob("*") if local_store.STAGING_MARK in p.name]
    assert leftovers == []


def test_a_forked_child_writes_its_own_rows_not_its_parents(location: Path) -> None:
    memory = Memory(location, verbose=0)
    cached = _fill(memory, 3)
    index = _store(memory).entry_index()
    assert index is not None
    index.flush()  # the parent's connection is open
    cached(3)  # buffered in the parent, not written yet
    # The child goes on with the parent's Memory (and so its index object, rows pending).
    child = multiprocessing.get_context("fork").Process(
        target=lambda: [cached(x) for x in range(1000, 1000 + index_module.FLUSH_ROWS)]
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0
    # Read without reconciling: the child's rows are there (it exits without atexit handlers).
    assert index.totals()[0] == 4 + index_module.FLUSH_ROWS  # the parent's pending row counted
    assert cached.check_call_in_cache(1000)


def test_a_killed_writer_leaves_a_right_index(location: Path) -> None:
    Memory(location, verbose=0).cache(identity)(0)
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); from memory_helpers import endless_writer; "
        "endless_writer(sys.argv[1])"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(location), str(Path(__file__).parent)])
    try:
        deadline = time.time() + 60
        memory = Memory(location, verbose=0)
        while _truth(memory)[0] < 30 and time.time() < deadline:
            time.sleep(0.2)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    memory = Memory(location, verbose=0)
    _store(memory).reconcile_index()
    assert _store(memory).totals() == _truth(memory) and _truth(memory)[0] >= 30
    assert endless_writer is not None  # the child's function, importable from the helpers
