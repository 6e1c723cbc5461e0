"""Time ``zoblib.hash`` against ``joblib.hash``; print a markdown table.

Usage::

    python benchmarks/bench_hash.py [--size-mib 1024] [--repeat 3]

Cases, each timed in the same run for both libraries (median of ``--repeat`` calls):

- a C-contiguous random float64 array of ``--size-mib`` MiB;
- the same values in Fortran order (zoblib digests them in C order through a bounded buffer);
- a nested dict of 10,000 small Python objects;
- a read-only ``np.memmap`` of the array carrying the ``zoblib_digest`` an archive records, so
  zoblib does not read it (joblib reads and hashes it all; the file is in the page cache).

"peak MiB" is the largest extra memory a call allocated through numpy and Python (tracemalloc,
in a separate, untimed call). The machine is shared: read the speedups rather than the seconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from zoblib.hashing import array_digest
from zoblib.hashing import hash as zoblib_hash


def median_seconds(func: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls of ``func``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_mib(func: Callable[[], object]) -> float:
    """Largest memory allocated (beyond what existed) during one call of ``func``, in MiB."""
    tracemalloc.start()
    try:
        func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def nested_dict(n: int = 10_000) -> dict[str, Any]:
    """The dict of the issue: ``n`` entries, each a small dict holding a list."""
    return {f"k{i}": {"a": i, "b": [i, float(i), str(i)]} for i in range(n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="array size (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per case (default 3)")
    args = parser.parse_args()

    array = np.random.default_rng(0).random(args.size_mib * 2**20 // 8)
    fortran = np.asfortranarray(array.reshape(-1, 1024))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "array.bin"
        array.tofile(path)
        mapped = np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)
        mapped.zoblib_digest = array_digest(array)  # type: ignore[attr-defined]
        cases: list[tuple[str, object, int | None]] = [
            (f"float64 array, {args.size_mib} MiB, C order", array, array.nbytes),
            (f"float64 array, {args.size_mib} MiB, F order", fortran, fortran.nbytes),
            ("nested dict, 10,000 entries", nested_dict(), None),
            (f"memmap with zoblib_digest, {args.size_mib} MiB", mapped, mapped.nbytes),
        ]
        assert zoblib_hash(mapped) == zoblib_hash(array)
        assert zoblib_hash(fortran) == zoblib_hash(array.reshape(fortran.shape))
        rows = [measure(name, obj, nbytes, args.repeat) for name, obj, nbytes in cases]
        del mapped

    print(
        "| case | zoblib s | joblib s | zoblib GB/s | joblib GB/s | speedup | "
        "zoblib peak MiB | joblib peak MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def measure(name: str, obj: object, nbytes: int | None, repeat: int) -> list[str]:
    """One table row: times, throughputs, the speedup and peak memory of both libraries."""
    ours = median_seconds(lambda: zoblib_hash(obj), repeat)
    theirs = median_seconds(lambda: joblib.hash(obj), repeat)

    def rate(seconds: float) -> str:
        return "-" if nbytes is None else f"{nbytes / seconds / 1e9:.2f}"

    # With a recorded digest zoblib reads none of the data: a throughput would mean nothing.
    reads_data = getattr(obj, "zoblib_digest", None) is None
    return [
        name,
        f"{ours:.4f}",
        f"{theirs:.4f}",
        rate(ours) if reads_data else "not read",
        rate(theirs),
        f"{theirs / ours:.1f}x",
        f"{peak_mib(lambda: zoblib_hash(obj)):.1f}",
        f"{peak_mib(lambda: joblib.hash(obj)):.1f}",
    ]


if __name__ == "__main__":
    main()
