"""Damaged entries, killed writers, racing processes and scripts: real files and processes."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from memory_helpers import Counter

import zoblib
from zoblib.errors import CacheEntryWarning
from zoblib.memory import Memory, MissReason


def _entry_dir(memory: Memory) -> Path:
    (entry,) = memory.list_entries()
    return Path(entry.location)


def _flip_a_byte(path: Path, offset: int = -20) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("container", ["zarr", "zip"])
def test_corrupted_entry_warns_and_recomputes(location: Path, counter: Counter, container: str) -> None:
    memory = Memory(location, verbose=0, backend_options={"container": container})

    @memory.cache
    def f(n: int) -> np.ndarray:
        counter(n)
        return np.arange(n, dtype=np.int64)

    f(50_000)
    entry = _entry_dir(memory)
    if container == "zarr":
        chunks = [p for p in (entry / "output.zarr").rglob("*") if p.is_file() and p.stat().st_size > 100_000]
        _flip_a_byte(chunks[0], offset=1000)
    else:
        archive = entry / "output.pkl"
        _flip_a_byte(archive, offset=archive.stat().st_size // 2)  # inside the array's data
    with pytest.warns(CacheEntryWarning, match="cannot read the cached result"):
        result = f(50_000)
    np.testing.assert_array_equal(result, np.arange(50_000))
    assert len(counter) == 2
    assert f.last_status is not None and f.last_status.reason is MissReason.UNREADABLE
    # The damaged entry was replaced by a valid one.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(f(50_000), np.arange(50_000))
    assert len(counter) == 2


@pytest.mark.parametrize("container", ["zarr", "zip"])
def test_memmapped_hits_are_checked_with_the_verify_option(
    location: Path, counter: Counter, container: str
) -> None:
    def cached(memory: Memory) -> object:
        @memory.cache
        def f(n: int) -> np.ndarray:
            counter(n)
            return np.arange(n, dtype=np.int64)

        return f

    plain = cached(Memory(location, mmap_mode="r", verbose=0, backend_options={"container": container}))
    verifying = cached(
        Memory(location, mmap_mode="r", verbose=0, backend_options={"container": container, "verify": True})
    )
    mapped = plain(100_000)  # type: ignore[operator]
    assert isinstance(mapped, np.memmap)
    assert isinstance(verifying(100_000), np.memmap)  # type: ignore[operator]
    assert len(counter) == 1
    under_the_memmap = (Path(mapped.filename), mapped.offset + 4000)
    del mapped
    _flip_a_byte(*under_the_memmap)
    # Unchecked, the hit serves the damaged data; with verify the entry is refused and recomputed.
    assert not np.array_equal(plain(100_000), np.arange(100_000))  # type: ignore[operator]
    assert len(counter) == 1
    with pytest.warns(CacheEntryWarning, match="cannot read the cached result"):
        result = verifying(100_000)  # type: ignore[operator]
    np.testing.assert_array_equal(result, np.arange(100_000))
    assert len(counter) == 2


def test_missing_archive_file_warns_and_recomputes(memory: Memory, counter: Counter) -> None:

    @memory.cache
    def f(x: int) -> int:
        counter(x)
        return x

    f(1)
    (_entry_dir(memory) / "output.pickle").unlink()  # a small result's one file
    assert f.cache_status(1).reason is MissReason.UNREADABLE
    with pytest.warns(CacheEntryWarning):
        assert f(1) == 1
    assert len(counter) == 2
    assert f.cache_status(1).hit


def test_corrupted_metadata_with_validation_callback(memory: Memory, counter: Counter) -> None:
    @memory.cache(cache_validation_callback=lambda metadata: True)
    def f(x: int) -> int:
        counter(x)
        return x

    f(1)
    (_entry_dir(memory) / "metadata.json").write_text("{not json")
    with pytest.warns(CacheEntryWarning):
        assert f(1) == 1
    assert f(1) == 1
    assert len(counter) == 2


_KILLED_WRITER = """
import sys, numpy as np
from zoblib.memory import Memory

memory = Memory(sys.argv[1], verbose=0)

@memory.cache
def big(n):
    return np.ones(n)

big(int(sys.argv[2]))
"""


def test_killed_writer_leaves_no_entry_and_next_call_recomputes(tmp_path: Path, location: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_KILLED_WRITER)
    n = 50_000_000  # 400 MB: the write takes long enough to be caught in the middle
    process = subprocess.Popen([sys.executable, str(script), str(location), str(n)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            staging = [p for p in location.rglob("*zoblib-tmp-*") if p.is_dir()] if location.exists() else []
            if any(sum(f.stat().st_size for f in s.rglob("*") if f.is_file()) > 10_000_000 for s in staging):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the writer never started writing")
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    memory = Memory(location, verbose=0)
    assert memory.list_entries() == []  # only hidden staging files remain
    # The same script run to its end recomputes (the leftovers do not count as an entry) and
    # stores a valid entry.
    subprocess.run([sys.executable, str(script), str(location), "1000"], check=True)
    subprocess.run([sys.executable, str(script), str(location), str(n)], check=True, timeout=120)
    entries = {e.input_args["n"]: e for e in memory.list_entries()}
    assert set(entries) == {"1000", str(n)}
    loaded = zoblib.load(Path(entries[str(n)].location) / "output.zarr", mmap_mode="r")
    assert loaded.shape == (n,) and loaded[-1] == 1.0


def test_stale_staging_leftovers_are_cleaned_by_later_writes(memory: Memory) -> None:
    f = memory.cache(lambda x: x)
    f(1)
    function_dir = _entry_dir(memory).parent
    leftover = function_dir / ".abc.zoblib-tmp-999999999-dead"
    leftover.mkdir()
    (leftover / "junk").write_bytes(b"x" * 100)
    recent = function_dir / ".def.zoblib-tmp-999999999-fresh"
    recent.mkdir()
    old = time.time() - 7200
    os.utime(leftover, (old, old))
    fresh_memory = Memory(memory.location, verbose=0)  # a new process's first write cleans
    fresh_memory.cache(f.func)(2)
    assert not leftover.exists()
    assert recent.exists()  # its writer may still be running on another host


def test_eight_processes_racing_on_one_call(location: Path) -> None:
    from memory_helpers import race_worker, slow_square_array

    n = 2_000_000
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(8, mp_context=context) as pool:
        # Start every worker first (spawning takes a while), then release them together.
        list(pool.map(time.sleep, [0.01] * 8))
        start_at = time.time() + 1.5
        results = list(pool.map(race_worker, [str(location)] * 8, [n] * 8, [start_at] * 8))
    assert len({pid for pid, _ in results}) >= 2
    assert all(ok for _, ok in results)
    memory = Memory(location, verbose=0)
    (entry,) = memory.list_entries()
    assert not [p for p in Path(entry.location).parent.iterdir() if "zoblib-tmp" in p.name]
    loaded = zoblib.load(Path(entry.location) / "output.zarr")
    np.testing.assert_array_equal(loaded, np.arange(n, dtype=np.float64) ** 2)
    cached = memory.cache(slow_square_array)
    assert cached.check_call_in_cache(n)


def test_threads_racing_on_one_call(memory: Memory) -> None:
    from memory_helpers import slow_square_array

    cached = memory.cache(slow_square_array)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(cached, [100_000] * 16))
    for result in results:
        np.testing.assert_array_equal(result, np.arange(100_000, dtype=np.float64) ** 2)
    assert len(memory.list_entries()) == 1


_SCRIPT = """
import sys
from zoblib.memory import Memory

memory = Memory(sys.argv[1], verbose=0)

@memory.cache
def compute(x):
    print("computing", x)
    return x * 2

print("result", compute(21), compute.last_status.reason)
"""


def test_main_module_function_hits_on_second_run(tmp_path: Path, location: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(_SCRIPT))

    def run() -> str:
        done = subprocess.run(
            [sys.executable, str(script), str(location)], capture_output=True, text=True, check=True
        )
        return done.stdout

    first, second = run(), run()
    assert "computing 21" in first and "result 42" in first
    assert "computing" not in second and "result 42 None" in second
    (function,) = Memory(location, verbose=0).list_functions()
    assert function.func_id.startswith("__main__-") and function.func_id.endswith("/compute")
    script.write_text(textwrap.dedent(_SCRIPT).replace("x * 2", "x * 3"))
    third = run()
    assert "computing 21" in third and "result 63 code changed" in third
