"""Dump and hot load of one big array, every tool in one process, taking turns; the cost of checks.

Usage::

    python benchmarks/bench_hot_roundtrip.py [--size-mib 1024] [--rounds 7] [--tmpdir DIR]
    python benchmarks/bench_hot_roundtrip.py --compress 3 --data decimal --size-mib 256

The ``checksum=False`` rows show what zoblib's integrity checks cost (format version 2: a
CRC-32C per chunk written and checked, each tied to its place by the root record, and the
content digest of every array computed at dump and checked at load): the same call without
them. With ``--compress``, joblib and zoblib both get that ``compress=`` value and np.save drops out.

``bench_archive.py`` runs each operation in a fresh process; here one process alternates the
tools round after round and loads each file twice right after writing it, timing the second load,
which finds the file in the page cache (the first may not: this machine's host pages out memory
it judges cold, freshly written file pages included). It measures what the writers and readers
themselves cost at page-cache speed. Each dump writes a new file after an ``os.sync()``; only the
``zoblib fsync=True`` row fsyncs. Before each timed call, memory of 1.25x the data is written and
freed, so that every tool gets pages the guest kernel holds (see ``_common.warm_memory``).
Prints medians and fastest runs, and their ratios to joblib's.
"""

from __future__ import annotations

import argparse
import json
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
from _common import (
    WARM_FACTOR,
    describe_environment,
    format_ratio,
    format_seconds,
    markdown_table,
    warm_memory,
)


def _np_save(array: np.ndarray[Any, Any], path: str) -> None:
    with open(path, "wb") as file:
        np.save(file, array)


Dump = Callable[[Any, str], Any]
Load = Callable[[str], Any]


def tools(compress: Any) -> dict[str, tuple[str, Dump, Load]]:
    """name -> (file suffix, dump, load), all with the same ``compress`` value."""

    def zoblib_dump(**options: Any) -> Dump:
        return lambda a, p: zoblib.dump(a, p, compress=compress, **options)

    table: dict[str, tuple[str, Dump, Load]] = {
        "zoblib": (".pkl", zoblib_dump(), zoblib.load),
        "zoblib fsync=True": (".pkl", zoblib_dump(fsync=True), zoblib.load),
        "zoblib checksum=False": (".pkl", zoblib_dump(checksum=False), zoblib.load),
        "zoblib .zarr": (".zarr", zoblib_dump(), zoblib.load),
        "joblib": (".joblib", lambda a, p: joblib.dump(a, p, compress=compress), joblib.load),
    }
    if not compress:
        table["np.save"] = (".npy", _np_save, np.load)
    return table


def data(kind: str, nbytes: int) -> np.ndarray[Any, Any]:
    """``random`` (incompressible) or ``decimal`` (a noisy sine rounded to 4 decimals) float64."""
    rng = np.random.default_rng(0)
    if kind == "random":
        return rng.random(nbytes // 8)
    x = np.linspace(0, 200 * np.pi, nbytes // 8)
    return np.round(np.sin(x) + 0.01 * rng.standard_normal(x.size), 4)


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def run(
    array: np.ndarray[Any, Any], table: dict[str, tuple[str, Dump, Load]], rounds: int, workdir: str
) -> dict[tuple[str, str], list[float]]:
    """Per (tool, operation), the times of ``rounds`` rounds (after one untimed warm-up round)."""
    times: dict[tuple[str, str], list[float]] = {}
    names = list(table)
    for round_number in range(rounds + 1):
        # Each round starts one tool later: what a tool's dump costs depends on what the tool
        # before it freed (an fsync'd file's pages, a big file's), so no tool always follows
        # the same one.
        turn = round_number % len(names)
        for name in names[turn:] + names[:turn]:
            suffix, dump, load = table[name]
            path = os.path.join(workdir, "roundtrip" + suffix)
            _remove(path)
            os.sync()
            warm_memory(int(WARM_FACTOR * array.nbytes))
            start = time.perf_counter()
            dump(array, path)
            times.setdefault((name, "dump"), []).append(time.perf_counter() - start)
            # The first read after a write may go to the disk here (the host pages out memory
            # it judges cold); the timed load is the second, from the page cache.
            load(path)
            warm_memory(int(WARM_FACTOR * array.nbytes))
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


def report(times: dict[tuple[str, str], list[float]]) -> str:
    rows = []
    names = list(dict.fromkeys(name for name, _ in times))
    for operation in ("dump", "load"):
        joblib_times = times[("joblib", operation)]
        unchecked = times[("zoblib checksum=False", operation)]
        for name in names:
            samples = times[(name, operation)]
            rows.append(
                [
                    name,
                    operation,
                    format_seconds(statistics.median(samples)),
                    format_ratio(statistics.median(joblib_times) / statistics.median(samples)),
                    format_seconds(min(samples)),
                    format_ratio(min(joblib_times) / min(samples)),
                    format_ratio(statistics.median(unchecked) / statistics.median(samples)),
                    str(len(samples)),
                ]
            )
    headers = ["tool", "operation", "median", "vs joblib", "best", "best vs joblib", "vs unchecked", "runs"]
    return markdown_table(headers, rows, align="llrrrrrr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tmpdir", default=None, help="where to write (a fresh directory is made inside)")
    parser.add_argument("--compress", type=int, default=0, help="compress= for joblib and zoblib alike")
    parser.add_argument("--data", choices=["random", "decimal"], default="random")
    parser.add_argument(
        "--save-json", default=None, metavar="PATH", help="also write every time to this JSON file"
    )
    arguments = parser.parse_args()
    array = data(arguments.data, arguments.size_mib << 20)
    with tempfile.TemporaryDirectory(dir=arguments.tmpdir) as workdir:
        times = run(array, tools(arguments.compress), arguments.rounds, workdir)
    print(describe_environment(["numpy", "zarr", "joblib", "zoblib"]))
    print(
        f"\nOne float64 array of {arguments.size_mib} MiB ({arguments.data}), compress={arguments.compress}, "
        f"{arguments.rounds} rounds. 'vs unchecked': the same call's speed relative to zoblib "
        "checksum=False (below 1.00x: what the checks cost).\n"
    )
    print(report(times))
    if arguments.save_json:
        document = {
            "benchmark": "bench_hot_roundtrip",
            "environment": describe_environment(["numpy", "zarr", "joblib", "zoblib"]),
            "arguments": {key: value for key, value in vars(arguments).items() if key != "save_json"},
            "rows": [
                {"tool": name, "operation": operation, "seconds": samples}
                for (name, operation), samples in times.items()
            ],
        }
        with open(arguments.save_json, "w") as file:
            json.dump(document, file, indent=1)
            file.write("\n")


if __name__ == "__main__":
    main()
