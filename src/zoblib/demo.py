"""The demo: ``python -m zoblib.demo``.

Dumps a model-sized object graph and loads it back (whole, memory-mapped and lazily), caches an
expensive function, and runs a Parallel loop, printing what happened and how fast, next to
joblib when joblib is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import zoblib


def _timed(action: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def _size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


def make_model(total_mib: int) -> dict[str, Any]:
    """A model-like object graph: big weight matrices, many small arrays, plain Python data."""
    rng = np.random.default_rng(0)
    rows = max(total_mib * (1 << 20) // 8 // 2 // 4096, 1)
    return {
        "name": "demo-model",
        "layers": [
            {"weights": rng.standard_normal((rows, 4096)), "bias": rng.standard_normal(4096)},
            {"weights": np.sin(np.arange(rows * 4096, dtype=np.float64) / 5e4).reshape(rows, 4096)},
        ],
        "vocabulary": {f"token{i}": np.full(16, i, dtype=np.int32) for i in range(10_000)},
        "history": [rng.random(32_768) for _ in range(200)],
    }


def _gbps(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e9:5.2f} GB/s"


@dataclass
class _Row:
    """One operation, zoblib next to joblib: seconds, and the file written or read (dumps, loads)."""

    label: str
    zoblib: float
    joblib: float | None = None
    moves_data: bool = True  # a memory map or a lazy open moves nothing: no throughput
    zoblib_file: int | None = None
    joblib_file: int | None = None


def _print_rows(rows: list[_Row], nbytes: int) -> None:
    print(f"   {'operation':30s} {'zoblib':>21s} {'joblib':>21s} {'speedup':>8s}   files (zoblib / joblib)")
    for row in rows:
        ours = f"{row.zoblib:7.3f} s" + (f" {_gbps(nbytes, row.zoblib)}" if row.moves_data else " " * 11)
        theirs = "—".rjust(21)
        ratio = ""
        if row.joblib is not None:
            theirs = f"{row.joblib:7.3f} s" + (
                f" {_gbps(nbytes, row.joblib)}" if row.moves_data else " " * 11
            )
            ratio = f"{row.joblib / row.zoblib:6.2f}x"
        files = ""
        if row.zoblib_file is not None:
            files = f"{row.zoblib_file / 2**20:7.1f} MiB"
            if row.joblib_file is not None:
                files += f" / {row.joblib_file / 2**20:.1f} MiB"
        print(f"   {row.label:30s} {ours:>21s} {theirs:>21s} {ratio:>8s}   {files}")
    print("   (speedup: joblib's time / zoblib's; GB/s only where the data moves; —: joblib cannot)")


def _cell(seconds: float, nbytes: int, moves_data: bool) -> str:
    return f"{seconds:7.3f} s" + (f" {_gbps(nbytes, seconds)}" if moves_data else " " * 11)


def demo_persistence(folder: str, total_mib: int) -> None:
    model = make_model(total_mib)
    nbytes = sum(layer["weights"].nbytes for layer in model["layers"]) + 200 * 32_768 * 8
    print(
        f"== dump/load: a model of {nbytes / 2**20:.0f} MiB (2 weight matrices, 10,000 small "
        "arrays, 200 mid-size arrays)"
    )
    try:
        import joblib
    except ImportError:
        joblib = None
        print("   (joblib is not installed: no comparison)")
    path = os.path.join(folder, "model.pkl")
    compressed = os.path.join(folder, "model-compressed.pkl")
    reference = os.path.join(folder, "model.joblib")
    reference_compressed = reference + ".z"

    def both(label: str, ours: Callable[[], Any], theirs: Callable[[], Any] | None, **kw: Any) -> Any:
        value, seconds = _timed(ours)
        their_seconds = None if joblib is None or theirs is None else _timed(theirs)[1]
        rows.append(_Row(label, seconds, their_seconds, **kw))
        return value

    rows: list[_Row] = []
    both("dump", lambda: zoblib.dump(model, path), joblib and (lambda: joblib.dump(model, reference)))
    rows[-1].zoblib_file, rows[-1].joblib_file = _size(path), joblib and _size(reference)
    loaded = both("load", lambda: zoblib.load(path), joblib and (lambda: joblib.load(reference)))
    assert np.array_equal(loaded["layers"][1]["weights"], model["layers"][1]["weights"])
    del loaded
    mapped = both(
        "load, mmap_mode='r'",
        lambda: zoblib.load(path, mmap_mode="r"),
        joblib and (lambda: joblib.load(reference, mmap_mode="r")),
        moves_data=False,
    )
    weights = mapped["layers"][0]["weights"]
    print(
        f"   mmap load returns {type(weights).__name__} of shape {weights.shape}; "
        f"row 7 sums to {weights[7].sum():.3f}"
    )
    both(
        "dump compress=3",
        lambda: zoblib.dump(model, compressed, compress=3),
        joblib and (lambda: joblib.dump(model, reference_compressed, compress=3)),
    )
    rows[-1].zoblib_file = _size(compressed)
    rows[-1].joblib_file = joblib and _size(reference_compressed)
    both(
        "load compress=3",
        lambda: zoblib.load(compressed),
        joblib and (lambda: joblib.load(reference_compressed)),
    )
    opened = both(
        "lazy open compress=3", lambda: zoblib.load(compressed, mmap_mode="r"), None, moves_data=False
    )
    lazy_weights = opened["layers"][1]["weights"]
    both("lazy slice of 10 rows", lambda: lazy_weights[100:110], None, moves_data=False)
    print(f"   compressed archive opens lazily: {lazy_weights!r}")
    _print_rows(rows, nbytes)


def _expensive_step(data: np.ndarray[Any, Any], scale: float) -> np.ndarray[Any, Any]:
    """A stand-in for an expensive numerical step."""
    time.sleep(1.0)
    result: np.ndarray[Any, Any] = np.sqrt(np.abs(data)) * scale
    return result


def demo_memory(folder: str, total_mib: int) -> None:
    rows = max(total_mib * (1 << 20) // 8 // 4096, 1)
    data = np.random.default_rng(1).standard_normal((rows, 4096))
    print(f"== Memory: caching a 1 s step on a {data.nbytes / 2**20:.0f} MiB array")
    memory = zoblib.Memory(os.path.join(folder, "cache"), mmap_mode="r", verbose=0)
    step = memory.cache(_expensive_step)
    first, seconds = _timed(lambda: step(data, 2.0))
    print(f"   first call (computes and stores):      {seconds:8.3f} s")
    second, seconds = _timed(lambda: step(data, 2.0))
    print(f"   second call (hit, memory-mapped):      {seconds:8.3f} s -> {type(second).__name__}")
    chained = memory.cache(_expensive_step)
    chained(second, 0.5)
    _, seconds = _timed(lambda: chained(second, 0.5))
    print(f"   chained hit on the memmapped result:   {seconds:8.3f} s (its hash comes from the archive)")
    assert np.array_equal(first, second)
    try:
        import joblib
    except ImportError:
        return
    reference = joblib.Memory(os.path.join(folder, "joblib-cache"), mmap_mode="r", verbose=0)
    joblib_step = reference.cache(_expensive_step)
    joblib_step(data, 2.0)
    _, seconds = _timed(lambda: joblib_step(data, 2.0))
    print(f"   joblib's hit for the same call:        {seconds:8.3f} s (md5 of the whole argument)")


def _column_norms(block: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    norms: np.ndarray[Any, Any] = np.sqrt((block**2).sum(axis=0))
    return norms


def demo_parallel(total_mib: int) -> None:
    rows = max(total_mib * (1 << 20) // 8 // 4096, 16)
    data = np.random.default_rng(2).standard_normal((rows, 4096))
    blocks = np.array_split(data, 16)
    print(f"== Parallel: 16 tasks on {data.nbytes / 2**20:.0f} MiB, 2 workers (arrays sent by reference)")
    try:
        import joblib
    except ImportError:
        joblib = None
    if joblib is not None:
        # joblib first: its vendored copy of loky gets confused when the standalone loky (ours)
        # ran earlier in the same process (spurious "leaked" memmap warnings at exit).
        with joblib.Parallel(n_jobs=2) as parallel:
            parallel(joblib.delayed(_column_norms)(b) for b in blocks[:2])  # start the workers
            _, joblib_seconds = _timed(lambda: parallel(joblib.delayed(_column_norms)(b) for b in blocks))
    with zoblib.Parallel(n_jobs=2) as parallel:
        parallel(zoblib.delayed(_column_norms)(b) for b in blocks[:2])
        results, seconds = _timed(lambda: parallel(zoblib.delayed(_column_norms)(b) for b in blocks))
    expected = [_column_norms(b) for b in blocks]
    assert all(np.allclose(r, e) for r, e in zip(results, expected, strict=True))
    print(f"   zoblib.Parallel: {seconds:8.3f} s for 16 tasks, results checked")
    if joblib is not None:
        print(f"   joblib.Parallel: {joblib_seconds:8.3f} s for the same tasks")


def main(argv: list[str] | None = None) -> None:
    """Run the demo."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=512, help="size of the model's weights")
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="zoblib-demo-")
    try:
        print(f"zoblib {zoblib.__version__}, numpy {np.__version__}, working in {folder}")
        demo_persistence(folder, args.size_mib)
        demo_memory(folder, args.size_mib // 2)
        demo_parallel(args.size_mib // 2)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
