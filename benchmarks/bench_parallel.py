"""zoblib.Parallel against joblib.Parallel, in the same run, on the cases of issue 6.

Cases (``--scale`` multiplies the sizes, for a quick run):

- ``tiny``: 10,000 tasks that add one to a number (overhead of dispatch and batching); each
  measurement is the median of 7 calls in the same process.
- ``tiny-generator``: the same tasks as a generator expression, the way users write it
  (``Parallel(n_jobs=2)(delayed(f)(i) for i in range(10000))``): no length is known, so the
  tail cannot be split by counting.
- ``big-argument``: one 1 GiB float64 array passed to 16 tasks on 2 workers; each task sums its
  sixteenth of it (cost of getting the array to the workers).
- ``big-argument-mmap``: the same array, already a memory map of a zoblib archive
  (``zoblib.load(..., mmap_mode='r')``); joblib gets the same memmap.
- ``big-results``: 16 tasks each returning a 128 MiB array; the caller then reads every
  result once (so pages mapped lazily are paid for).

Each measurement runs in a fresh process, after a warm-up call has started the workers and
passed a small array both ways. Time is the median over ``--repeat`` runs. Memory is the peak
growth, during the call, of the anonymous memory of the caller plus its workers (``Pss_Anon``
of ``/proc/<pid>/smaps_rollup``: pages shared between them counted once) plus the used space of
``/dev/shm``, where both libraries put the arrays they memory-map (files count there once,
whoever maps them, until the last mapping goes). It is sampled every 10 ms in a thread. The
input array of the ``big-argument`` cases exists before the call, so it is not in the growth.

Usage::

    python benchmarks/bench_parallel.py              # full size (needs ~6 GiB of RAM)
    python benchmarks/bench_parallel.py --scale 0.1  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil

CASES = ("tiny", "tiny-generator", "big-argument", "big-argument-mmap", "big-results")
LIBRARIES = ("zoblib", "joblib")
N_JOBS = 2
GIB = 1024**3
MIB = 1024**2


# -- tasks (module level: both libraries pickle them the same way) ------------------------------


def add_one(x: int) -> int:
    return x + 1


def sum_part(array: np.ndarray, part: int, parts: int) -> float:
    size = len(array) // parts
    return float(array[part * size : (part + 1) * size].sum())


def make_result(nbytes: int, value: int) -> np.ndarray:
    return np.full(nbytes // 8, float(value))


# -- one measurement, in a child process --------------------------------------------------------


class MemorySampler:
    """Sample the anonymous memory of this process tree plus the use of /dev/shm, in a thread."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.me = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def used(self) -> int:
        total = 0
        for process in [self.me, *self.me.children(recursive=True)]:
            try:
                with open(f"/proc/{process.pid}/smaps_rollup") as rollup:
                    for line in rollup:
                        if line.startswith("Pss_Anon:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                pass  # a process that just ended
        shm = os.statvfs("/dev/shm")
        return total + (shm.f_blocks - shm.f_bfree) * shm.f_frsize

    def __enter__(self) -> MemorySampler:
        self.base = self.used()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        self.peak = max(self.peak, self.used() - self.base)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)


def parallel_api(library: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    if library == "zoblib":
        from zoblib.parallel import Parallel, delayed
    else:
        from joblib import Parallel, delayed
    return Parallel, delayed


def shutdown(library: str) -> None:
    if library == "zoblib":
        from zoblib.parallel.backends.loky import shutdown_workers

        shutdown_workers()
    else:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True, kill_workers=True)


def measure(case: str, library: str, scale: float, workdir: str) -> dict[str, float]:
    Parallel, delayed = parallel_api(library)
    # Start the workers, and pass a 2 MiB array both ways once: the first use of the memmapping
    # code imports modules lazily, in the caller and in the workers, for both libraries.
    Parallel(n_jobs=N_JOBS)(delayed(add_one)(i) for i in range(100))
    warm = np.ones(2**18)
    Parallel(n_jobs=N_JOBS)(delayed(make_result)(warm.nbytes, part) for part in range(2))
    Parallel(n_jobs=N_JOBS)(delayed(sum_part)(warm, part, 2) for part in range(2))
    data_nbytes = 0
    after: Callable[[list[Any]], object] = len
    if case == "tiny":
        n_tasks = max(100, int(10_000 * scale))
        tasks: Any = [delayed(add_one)(i) for i in range(n_tasks)]
    elif case == "tiny-generator":
        n_tasks = max(100, int(10_000 * scale))

        def fresh_tasks() -> Any:
            return (delayed(add_one)(i) for i in range(n_tasks))
    elif case.startswith("big-argument"):
        data_nbytes = int(GIB * scale) // 8 * 8
        array = np.random.default_rng(0).random(data_nbytes // 8)
        if case == "big-argument-mmap":
            import zoblib

            path = os.path.join(workdir, "array.zarr")
            zoblib.dump(array, path)
            del array
            array = zoblib.load(path, mmap_mode="r")
            array.sum()  # in the page cache, as after any earlier use
        tasks = [delayed(sum_part)(array, part, 16) for part in range(16)]
        after = len
    else:
        nbytes = int(128 * MIB * scale) // 8 * 8
        data_nbytes = 16 * nbytes
        tasks = [delayed(make_result)(nbytes, value) for value in range(16)]

        def after(results: list[Any]) -> object:
            return sum(float(result.sum()) for result in results)

    # A tiny call lasts tens of milliseconds: take the median of several in the same process.
    timings = []
    with MemorySampler() as memory:
        for _ in range(7 if case.startswith("tiny") else 1):
            if case == "tiny-generator":
                tasks = fresh_tasks()  # the generator is built outside the timing, run inside
            started = time.perf_counter()
            results = Parallel(n_jobs=N_JOBS)(tasks)
            after(results)
            timings.append(time.perf_counter() - started)
            del results
    seconds = statistics.median(timings)
    shutdown(library)
    return {"seconds": seconds, "memory": memory.peak, "data_nbytes": data_nbytes}


# -- the harness --------------------------------------------------------------------------------


def run_child(case: str, library: str, scale: float) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", case, library, "--scale", str(scale)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{case}/{library} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def gib(nbytes: float) -> str:
    return f"{nbytes / GIB:.2f} GiB"


def table(rows: dict[tuple[str, str], list[dict[str, float]]], cases: list[str]) -> str:
    lines = [
        "| case | library | time (median) | speed-up vs joblib | peak memory growth | growth / data |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for case in cases:
        medians = {
            library: {
                key: statistics.median(run[key] for run in rows[case, library])
                for key in rows[case, library][0]
            }
            for library in LIBRARIES
        }
        for library in LIBRARIES:
            median = medians[library]
            speedup = medians["joblib"]["seconds"] / median["seconds"]
            data = median["data_nbytes"]
            relative = f"{median['memory'] / data:.2f}x" if data else "-"
            lines.append(
                f"| {case} | {library} | {median['seconds']:.3f} s | {speedup:.2f}x "
                f"| {gib(median['memory'])} | {relative} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sizes by this")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case and library")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "LIBRARY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        workdir = tempfile.mkdtemp(
            prefix="bench_parallel_", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
        )
        try:
            print(json.dumps(measure(*args.child, args.scale, workdir)))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    cases = [case for case in args.cases.split(",") if case]
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    for case in cases:
        for repeat in range(args.repeat):
            # Alternate the order so that neither library always runs on a warmer machine.
            for library in LIBRARIES if repeat % 2 == 0 else LIBRARIES[::-1]:
                result = run_child(case, library, args.scale)
                rows.setdefault((case, library), []).append(result)
                print(
                    f"{case:18s} {library:7s} {result['seconds']:8.3f} s  memory {gib(result['memory'])}",
                    file=sys.stderr,
                )
    print(f"\nscale={args.scale}, n_jobs={N_JOBS}, {os.cpu_count()} CPUs, repeat={args.repeat}\n")
    print(table(rows, cases))


if __name__ == "__main__":
    main()
