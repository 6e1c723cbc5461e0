"""Hit counts of the local store: one byte appended to an entry's ``hits`` file per hit.

The functions run in fresh processes (a module written to ``tmp_path``), as users sharing a
cache would run them, and the counts are read back from the store's own listing.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from zoblib.memory import Memory
from zoblib.memory.store import EntryStat

MODULE = textwrap.dedent(
    """
    import sys
    import time
    import zoblib

    memory = zoblib.Memory(sys.argv[1], verbose=0)


    @memory.cache
    def double(x):
        return 2 * x
    """
)

#: Waits for the start time in argv[3], then calls double(1) argv[2] times.
HITTER = textwrap.dedent(
    """
    import sys
    import time
    from work import double

    start_at = float(sys.argv[3])
    while time.time() < start_at:
        time.sleep(0.001)
    for _ in range(int(sys.argv[2])):
        assert double(1) == 2
    """
)


def _write_scripts(tmp_path: Path) -> None:
    (tmp_path / "work.py").write_text(MODULE)
    (tmp_path / "hitter.py").write_text(HITTER)


def _start_hitter(tmp_path: Path, location: Path, calls: int, start_at: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "hitter.py", str(location), str(calls), str(start_at)],
        cwd=tmp_path,
        text=True,
        stderr=subprocess.PIPE,
    )


def _stats(location: Path) -> list[EntryStat]:
    store = Memory(location, verbose=0).store_backend
    assert store is not None
    return [s for f in store.list_functions() for s in store.list_entries(f)]


def test_concurrent_processes_lose_no_hit(tmp_path: Path, location: Path) -> None:
    _write_scripts(tmp_path)
    first = _start_hitter(tmp_path, location, 1, 0.0)  # computes: a miss, no hit
    assert first.wait(timeout=120) == 0, first.stderr and first.stderr.read()
    assert [s.hits for s in _stats(location)] == [0]
    start_at = time.time() + 3.0  # the four interpreters are up by then, and start together
    workers = [_start_hitter(tmp_path, location, 25, start_at) for _ in range(4)]
    for worker in workers:
        _, errors = worker.communicate(timeout=180)
        assert worker.returncode == 0, errors
    (stat,) = _stats(location)
    assert stat.hits == 100
    entry = Path(Memory(location, verbose=0).store_backend.entry_location(stat.func_id, stat.args_id))  # type: ignore[union-attr]
    assert (entry / "hits").stat().st_size == 100


def test_hits_count_in_size_and_last_access(memory: Memory) -> None:
    double = memory.cache(lambda x: 2 * x)
    double(1)
    (before,) = memory.store_backend.list_entries(double.func_id)  # type: ignore[union-attr]
    metadata = Path(memory.store_backend.entry_location(before.func_id, before.args_id)) / "metadata.json"  # type: ignore[union-attr]
    past = time.time() - 3600
    os.utime(metadata, (past, past))  # written an hour ago ...
    for _ in range(3):
        double(1)  # ... hit now
    (after,) = memory.store_backend.list_entries(double.func_id)  # type: ignore[union-attr]
    assert after.hits == 3 and before.hits == 0
    assert after.size == before.size + 3
    assert abs(after.last_access - time.time()) < 60
    assert os.stat(metadata).st_mtime == past  # a hit no longer rewrites the metadata's mtime


def test_reduce_size_by_age_and_count_evicts_the_least_recently_hit(memory: Memory, location: Path) -> None:
    square = memory.cache(lambda x: x * x)
    for x in (1, 2, 3):
        square(x)
    store = memory.store_backend
    assert store is not None
    past = time.time() - 7200
    for stat in store.list_entries(square.func_id):
        metadata = Path(store.entry_location(stat.func_id, stat.args_id)) / "metadata.json"
        os.utime(metadata, (past, past))  # all three written two hours ago
    square(2)  # one of them hit now
    kept_id = square.cache_status(2).args_id
    removed = memory.reduce_size(age_limit=datetime.timedelta(hours=1))
    assert len(removed) == 2 and kept_id not in {r.args_id for r in removed}
    assert [s.args_id for s in store.list_entries(square.func_id)] == [kept_id]
    # With a count limit too: the entry hit last stays.
    square(1)
    time.sleep(0.05)
    square(2)
    removed = memory.reduce_size(items_limit=1)
    assert [s.args_id for s in store.list_entries(square.func_id)] == [kept_id]
    assert [r.args_id for r in removed] == [square.cache_status(1).args_id]


def test_a_recomputed_entry_starts_at_zero(memory: Memory) -> None:
    calls: list[int] = []

    def triple(x: int) -> int:
        calls.append(x)
        return 3 * x

    cached = memory.cache(triple)
    store = memory.store_backend
    assert store is not None

    def hits() -> dict[int, int | None]:
        by_id = {s.args_id: s.hits for s in store.list_entries(cached.func_id)}
        return {
            x: by_id[cached.cache_status(x).args_id]
            for x in (1, 2)
            if cached.cache_status(x).args_id in by_id
        }

    cached(1), cached(1), cached(1)
    assert hits() == {1: 2}
    cached(2)  # other arguments: a new entry
    assert hits() == {1: 2, 2: 0}
    cached.call(1)  # forced: the entry is rewritten
    assert hits() == {1: 0, 2: 0}
    cached(1)
    assert hits() == {1: 1, 2: 0}
    cached.clear()
    cached(1), cached(1)
    assert hits() == {1: 1}
    assert calls == [1, 2, 1, 1]


def test_a_damaged_or_missing_hits_file_does_not_break_hits(memory: Memory) -> None:
    calls: list[int] = []

    def negate(x: int) -> int:
        calls.append(x)
        return -x

    cached = memory.cache(negate)
    cached(1), cached(1)
    store = memory.store_backend
    assert store is not None
    entry = Path(store.entry_location(cached.func_id, cached.cache_status(1).args_id))
    (entry / "hits").unlink()  # missing: counted from 0 again
    assert [s.hits for s in store.list_entries(cached.func_id)] == [0]
    (entry / "hits").mkdir()  # not a file: hits still load, uncounted
    (entry / "hits" / "junk").write_bytes(b"x" * 10)
    assert cached(1) == -1
    (stat,) = store.list_entries(cached.func_id)
    assert stat.hits == 0 and stat.size > 0
    cached.call(1)  # the entry can still be replaced ...
    assert (entry / "hits").is_file() is False and cached(1) == -1
    assert [s.hits for s in store.list_entries(cached.func_id)] == [1]
    memory.reduce_size(items_limit=0)  # ... and evicted
    assert store.list_entries(cached.func_id) == []
    assert calls == [1, 1]
