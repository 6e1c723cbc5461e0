"""Uncompressed dump and hot load of one big array, every tool in one process, taking turns.

Usage::

    python benchmarks/bench_hot_roundtrip.py [--size-mib 1024] [--rounds 7] [--tmpdir DIR]

``bench_archive.py`` runs each operation in a fresh process; here one process alternates the
tools round after round and loads each file twice right after writing it, timing the second load,
which finds the file in the page cache (the first may not: this machine's host pages out memory
it judges cold, freshly written file pages included). It measures what the writers and readers
themselves cost at page-cache speed. Each dump writes a new file after an ``os.sync()``; zoblib's
default dump also fsyncs. Prints medians and fastest runs, and their ratios to joblib's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np

import zoblib
from _common import describe_environment, format_ratio, format_seconds, markdown_table


def _np_save(array: np.ndarray[Any, Any], path: str) -> None:
    with open(path, "wb") as file:
        np.save(file, array)


#: name -> (file suffix, dump, load)
TOOLS: dict[str, tuple[str, Callable[[Any, str], Any], Callable[[str], Any]]] = {
    "zoblib": (".pkl", zoblib.dump, zoblib.load),
    "zoblib fsync=False": (".pkl", lambda a, p: zoblib.dump(a, p, fsync=False), zoblib.load),
    "zoblib .zarr": (".zarr", zoblib.dump, zoblib.load),
    "joblib": (".joblib", joblib.dump, joblib.load),
    "np.save": (".npy", _np_save, np.load),
}


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def run(size_mib: int, rounds: int, workdir: str) -> dict[tuple[str, str], list[float]]:
    """Per (tool, operation), the times of ``rounds`` rounds (after one untimed warm-up round)."""
    array = np.random.default_rng(0).random((size_mib << 20) // 8)
    times: dict[tuple[str, str], list[float]] = {}
    for round_number in range(rounds + 1):
        for name, (suffix, dump, load) in TOOLS.items():
            path = os.path.join(workdir, "roundtrip" + suffix)
            _remove(path)
            os.sync()
            start = time.perf_counter()
            dump(array, path)
            times.setdefault((name, "dump"), []).append(time.perf_counter() - start)
            # The first read after a write may go to the disk here (the host pages out memory
            # it judges cold); the timed load is the second, from the page cache.
            load(path)
            start = time.perf_counter()
            loaded = load(path)
            times.setdefault((name, "load"), []).append(time.perf_counter() - start)
            if not np.array_equal(loaded, array):
                raise AssertionError(f"{name} did not round-trip")
            del loaded
            _remove(path)
        if round_number == 0:  # the warm-up round: imports, first allocations
            times.clear()
    return times


def table(times: dict[tuple[str, str], list[float]]) -> str:
    rows = []
    for operation in ("dump", "load"):
        joblib_times = times[("joblib", operation)]
        for name in TOOLS:
            samples = times[(name, operation)]
            rows.append(
                [
                    name,
                    operation,
                    format_seconds(statistics.median(samples)),
                    format_ratio(statistics.median(joblib_times) / statistics.median(samples)),
                    format_seconds(min(samples)),
                    format_ratio(min(joblib_times) / min(samples)),
                    str(len(samples)),
                ]
            )
    headers = ["tool", "operation", "median", "vs joblib", "best", "best vs joblib", "runs"]
    return markdown_table(headers, rows, align="llrrrrr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tmpdir", default=None, help="where to write (a fresh directory is made inside)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=arguments.tmpdir) as workdir:
        times = run(arguments.size_mib, arguments.rounds, workdir)
    print(describe_environment(["numpy", "zarr", "joblib", "zoblib"]))
    print(f"\nOne float64 array of {arguments.size_mib} MiB, {arguments.rounds} rounds.\n")
    print(table(times))


if __name__ == "__main__":
    main()
