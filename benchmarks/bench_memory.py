"""zoblib.Memory against joblib.Memory, same run, same machine: four cases, medians and ratios.

Cases (each library in fresh processes, alternating, so neither inherits the other's caches;
small hits, too quick to compare across processes on a shared machine, alternate in batches
within one process):

1. a cache hit with small arguments and a small result;
2. a cache hit whose argument is a big array (joblib hashes it with md5, zoblib with xxh3);
3. a cache hit returning a big array with ``mmap_mode='r'``;
4. storing a big result (the miss that writes it).

The scale table (``--scale``) fills one cache per library with N entries of a function returning
a small int (one fresh process per library and size), then measures, in that process: storing a
new small result (median of single calls), a hit on a random entry, ``reduce_size`` removing 100
entries, listing the function's entries, and the process's peak RSS (``ru_maxrss``).

Usage::

    python benchmarks/bench_memory.py            # 1 GiB arrays
    python benchmarks/bench_memory.py --quick    # 64 MiB arrays, fewer repeats
    python benchmarks/bench_memory.py --scale    # the scale table at 1k and 100k entries
    python benchmarks/bench_memory.py --scale --million   # ... and 1M (hours; not run in CI)
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (
    describe_environment,
    format_bytes,
    format_ratio,
    format_seconds,
    markdown_table,
    run_isolated,
)

LIBRARIES = ("zoblib", "joblib")


def _memory(library: str, location: str, **options: Any) -> Any:
    if library == "zoblib":
        from zoblib.memory import Memory

        return Memory(location, verbose=0, **options)
    import joblib

    return joblib.Memory(location, verbose=0, **options)


def small_function(x: int, name: str = "abc") -> dict[str, Any]:
    return {"x": x, "name": name, "values": list(range(10))}


def array_argument_function(a: np.ndarray) -> float:
    return float(a[0])


_BIG: dict[str, np.ndarray] = {}


def big_result_function(key: int, nbytes: int) -> np.ndarray:
    if "big" not in _BIG:
        _BIG["big"] = np.random.default_rng(key).random(nbytes // 8)
    return _BIG["big"]


def _median_time(call: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- the cases, each run in a fresh process --------------------------------------------------


def case_small_hit(location: str, repeats: int) -> dict[str, float]:
    # Both libraries in one process, batches alternating: a hit takes ~0.1 ms, less than the
    # drift of a shared machine's load between two processes.
    cached = {
        library: _memory(library, os.path.join(location, library)).cache(small_function)
        for library in LIBRARIES
    }
    for function in cached.values():
        for _ in range(100):
            function(1)  # the first computes; then warm up imports, code checks, file caches
    batch = 200
    times: dict[str, list[float]] = {library: [] for library in LIBRARIES}
    for _ in range(repeats):
        for library, function in cached.items():
            start = time.perf_counter()
            for _ in range(batch):
                function(1)
            times[library].append((time.perf_counter() - start) / batch)
    return {library: statistics.median(values) for library, values in times.items()}


def case_array_argument_hit(library: str, location: str, nbytes: int, repeats: int) -> float:
    a = np.random.default_rng(0).random(nbytes // 8)
    cached = _memory(library, location).cache(array_argument_function)
    cached(a)
    return _median_time(lambda: cached(a), repeats)


def case_mmap_hit(library: str, location: str, nbytes: int, repeats: int) -> float:
    cached = _memory(library, location, mmap_mode="r").cache(big_result_function)
    cached(0, nbytes)
    _BIG.clear()
    for _ in range(5):
        cached(0, nbytes)
    return _median_time(lambda: cached(0, nbytes), repeats)


def case_store(library: str, location: str, nbytes: int) -> float:
    memory = _memory(library, location)
    memory.cache(small_function)(0)  # warm up: lazy imports and first-write setup are not timed
    cached = memory.cache(big_result_function)
    big_result_function(0, nbytes)  # the result exists before timing: only storing is measured
    os.sync()  # earlier runs' dirty pages are not this run's to write back
    start = time.perf_counter()
    cached(1, nbytes)
    return time.perf_counter() - start


# ---- the scale table -----------------------------------------------------------------------

#: Timed single calls per measurement at each size.
SCALE_CALLS = 500
#: Entries ``reduce_size`` removes in the scale table.
SCALE_EVICTED = 100


def tiny_function(x: int) -> int:
    return x


def _single_call_median(cached: Any, arguments: list[int]) -> float:
    times = []
    for x in arguments:
        start = time.perf_counter()
        cached(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def case_scale(library: str, location: str, entries: int) -> dict[str, float]:
    """Fill a cache with ``entries`` small results, then time the operations at that size."""
    memory = _memory(library, location)
    cached = memory.cache(tiny_function)
    start = time.perf_counter()
    for x in range(entries):
        cached(x)
    fill = time.perf_counter() - start
    stored = _single_call_median(cached, list(range(entries, entries + SCALE_CALLS)))
    total = entries + SCALE_CALLS
    hit = _single_call_median(cached, random.Random(0).sample(range(total), min(total, 4 * SCALE_CALLS)))
    start = time.perf_counter()
    if library == "zoblib":
        listed = sum(1 for _ in memory.iter_entries(cached))
    else:  # joblib lists entries only through its store (what its reduce_size scans)
        listed = len(memory.store_backend.get_items())
    listing = time.perf_counter() - start
    assert listed == total, (listed, total)
    start = time.perf_counter()
    memory.reduce_size(items_limit=total - SCALE_EVICTED)
    reduce = time.perf_counter() - start
    # Again: zoblib's first reduce_size in a process also reconciles its index with the folders.
    start = time.perf_counter()
    memory.reduce_size(items_limit=total - 2 * SCALE_EVICTED)
    reduce_again = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {
        "fill": fill,
        "store": stored,
        "hit": hit,
        "listing": listing,
        "reduce": reduce,
        "reduce again": reduce_again,
        "peak": peak,
    }


def run_scale(sizes: list[int], scratch: str, libraries: tuple[str, ...] = LIBRARIES) -> None:
    results: dict[tuple[int, str], dict[str, float]] = {}
    for number, size in enumerate(sizes):
        for library in libraries if number % 2 == 0 else libraries[::-1]:
            location = tempfile.mkdtemp(prefix=f"{library}-scale-{size}-", dir=scratch)
            try:
                results[(size, library)] = run_isolated(case_scale, library, location, size)
                # Said before the cache is removed: removing a million entries takes minutes.
                print(f"scale {size} {library}: {results[(size, library)]}", file=sys.stderr, flush=True)
            finally:
                shutil.rmtree(location, ignore_errors=True)
    rows = []
    for size in sizes:
        zob, job = results.get((size, "zoblib")), results.get((size, "joblib"))
        for key, label in (
            ("store", "store a small result (per call)"),
            ("hit", "hit (per call)"),
            ("reduce", f"reduce_size removing {SCALE_EVICTED} (first in the process)"),
            ("reduce again", f"reduce_size removing {SCALE_EVICTED} more"),
            ("listing", "list the entries"),
            ("fill", f"fill: {size:,} stores"),
        ):
            rows.append(
                [
                    f"{size:,}",
                    label,
                    "-" if zob is None else format_seconds(zob[key]),
                    "-" if job is None else format_seconds(job[key]),
                    "" if zob is None or job is None else format_ratio(job[key] / zob[key]),
                ]
            )
        peaks = ["-" if found is None else format_bytes(found["peak"]) for found in (zob, job)]
        rows.append([f"{size:,}", "peak RSS", *peaks, ""])
    print(describe_environment(["zoblib", "joblib", "numpy", "zarr"]))
    print()
    print("One fresh process per library and size (ratio > 1: zoblib is faster).")
    print()
    print(markdown_table(["entries", "case", "zoblib", "joblib", "joblib / zoblib"], rows, align="llrrr"))


def _run(case: str, library: str, scratch: str, nbytes: int, repeats: int) -> float:
    location = tempfile.mkdtemp(prefix=f"{library}-{case}-", dir=scratch)
    try:
        if case == "array argument hit":
            return run_isolated(case_array_argument_hit, library, location, nbytes, repeats)
        if case == "mmap hit":
            return run_isolated(case_mmap_hit, library, location, nbytes, repeats)
        return run_isolated(case_store, library, location, nbytes)
    finally:
        shutil.rmtree(location, ignore_errors=True)


#: Timed calls per fresh-process run, by case.
REPEATS = {"small hit": 21, "array argument hit": 3, "mmap hit": 50, "store": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB arrays and fewer repeats")
    parser.add_argument("--scratch", default=None, help="folder for the caches (default: a temp dir)")
    parser.add_argument("--rounds", type=int, default=None, help="fresh-process runs per case and library")
    parser.add_argument(
        "--cases", nargs="+", choices=list(REPEATS), default=list(REPEATS), help="the cases to run"
    )
    parser.add_argument("--scale", action="store_true", help="the scale table (1k and 100k entries)")
    parser.add_argument(
        "--sizes", nargs="+", type=int, default=[1_000, 100_000], help="with --scale: the cache sizes"
    )
    parser.add_argument("--million", action="store_true", help="with --scale: also 1M entries (not in CI)")
    parser.add_argument(
        "--libraries",
        nargs="+",
        choices=LIBRARIES,
        default=list(LIBRARIES),
        help="with --scale: the libraries to run (joblib's fill of 1M entries takes a good 20 minutes)",
    )
    options = parser.parse_args()
    if options.scale:
        scratch = tempfile.mkdtemp(prefix="zoblib-bench-scale-", dir=options.scratch)
        try:
            sizes = [*options.sizes, *([1_000_000] if options.million else [])]
            run_scale(sizes, scratch, tuple(options.libraries))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    nbytes = (64 if options.quick else 1024) << 20
    rounds = options.rounds or (2 if options.quick else 3)
    cases = {case: REPEATS[case] for case in options.cases}
    scratch = tempfile.mkdtemp(prefix="zoblib-bench-memory-", dir=options.scratch)
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for case, repeats in cases.items():
            if case == "small hit":
                for _ in range(rounds):
                    location = tempfile.mkdtemp(prefix="small-", dir=scratch)
                    for library, seconds in run_isolated(case_small_hit, location, repeats).items():
                        results.setdefault((case, library), []).append(seconds)
                        print(f"{case:>20} {library}: {format_seconds(seconds)}", file=sys.stderr, flush=True)
                continue
            for round_number in range(rounds):
                order = LIBRARIES if round_number % 2 == 0 else LIBRARIES[::-1]
                for library in order:
                    seconds = _run(case, library, scratch, nbytes, repeats)
                    results.setdefault((case, library), []).append(seconds)
                    print(f"{case:>20} {library}: {format_seconds(seconds)}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    size = f"{nbytes >> 20} MiB"
    labels = {
        "small hit": "hit, small arguments and result",
        "array argument hit": f"hit, {size} array argument",
        "mmap hit": f"hit returning a {size} array, mmap_mode='r'",
        "store": f"storing a {size} result",
    }
    rows = []
    for case in cases:
        zoblib_seconds = statistics.median(results[(case, "zoblib")])
        joblib_seconds = statistics.median(results[(case, "joblib")])
        rows.append(
            [
                labels[case],
                format_seconds(zoblib_seconds),
                format_seconds(joblib_seconds),
                format_ratio(joblib_seconds / zoblib_seconds),
            ]
        )
    print(describe_environment(["zoblib", "joblib", "numpy", "zarr"]))
    print()
    print(f"Medians of {rounds} fresh-process runs per library (ratio > 1: zoblib is faster).")
    print()
    print(markdown_table(["case", "zoblib", "joblib", "joblib / zoblib"], rows, align="lrrr"))


if __name__ == "__main__":
    main()
