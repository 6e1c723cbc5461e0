"""Benchmark ``dump``, ``load`` and memory-mapped ``load``: zoblib against joblib, numpy, pickle, h5py.

Run from the repository root::

    .venv/bin/python benchmarks/bench_archive.py                            # 1 GiB arrays, 3 runs each
    .venv/bin/python benchmarks/bench_archive.py --size-mib 64 --repeat 1   # a quick check
    .venv/bin/python benchmarks/bench_archive.py --only big-random many-small --tools zoblib joblib

The full run writes a few GiB under ``--tmpdir`` (default: the system's temp directory), deletes
them at the end, and takes 7 to 10 minutes on 2 cores.

Cases (``--size-mib`` scales all but ``many-small``; the sizes below are the default's):

- ``big-random``: one 1 GiB float64 array of uniform random numbers (incompressible).
- ``big-decimal``: one 1 GiB float64 array of a noisy sine wave rounded to 4 decimals, the way a
  sensor value read back from text looks: zlib gets it to about 1/3 of its size.
- ``mid-list``: a list of 2,000 float64 arrays of 256 KiB each (500 MiB).
- ``many-small``: a dict of 10,000 float64 arrays of 100 items each (7.6 MiB).
- ``forest``: a scikit-learn ``RandomForestClassifier`` of 200 fully grown trees fitted on
  100,000 x 20 ``make_classification`` samples (about 230 MB; fitting it takes a minute or two).
- ``dataframe``: a pandas DataFrame of 10 float64 columns (10 million rows at 1 GiB).

Operations: ``dump``; ``load``; ``mmap-load`` (``load(path, mmap_mode='r')``, also on an archive of
a quarter of the data, ``mmap-load 1/4``, to show whether its time grows with size); and
``mmap+slice`` (mmap ``load`` plus copying 1 MiB from the middle of the array).

How it measures: zoblib's source is copied at the start (from the working tree, or from a commit
with ``--zoblib-rev HEAD``) and the runs import the copy, so edits made during the run cannot mix
versions. Every run of every operation happens in a fresh spawned process, which builds the
operation's input (the array to dump, read from an input file), then times the operation and
samples its RSS every 5 ms (see ``_common.PeakRSS``). The tools take turns, run after run, so that
load from other processes weighs on all of them alike. Memory is reported as the peak RSS during
the operation minus the RSS before the input was built (the interpreter and imports), as a
multiple of the data's size: a dump holds its input, so 1.0x is its floor, and so is a full
load's. No tool fsyncs by default (zoblib's ``fsync=True`` row shows what durability against a
power cut costs). Every dump writes a new file (the previous run's is deleted first), and the script
calls ``os.sync()`` before each run so that earlier writes do not flush during it; loads read the
file just written, hot in the page cache. Times are medians; joblib with ``compress=3`` runs once
(it takes half a minute per GiB), memory-mapped loads at least 5 times (they take about a
millisecond).

Output: markdown on stdout (progress on stderr): the environment, one table per case, then the
targets of the issue that asked for this benchmark, each met or not met.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import joblib
import numpy as np

import zoblib
from _common import (
    WARM_FACTOR,
    Sample,
    describe_environment,
    disk_usage,
    format_bytes,
    format_ratio,
    format_seconds,
    markdown_table,
    max_peak_above_baseline,
    measure,
    median_seconds,
    rss_bytes,
    run_isolated,
    snapshot_package,
    warm_memory,
)

MIB = 1 << 20
FLOAT64_NBYTES = 8
#: Items written to an input file at a time (128 MiB of float64).
INPUT_BLOCK_ITEMS = 16 << 20
#: ``mmap+slice`` copies this many items (1 MiB) from the middle of the array.
SLICE_ITEMS = MIB // FLOAT64_NBYTES
#: Size of each array of the ``mid-list`` case (256 KiB of float64).
MID_ARRAY_ITEMS = 32768
#: Number of arrays of the ``mid-list`` case at the default ``--size-mib``.
MID_ARRAY_COUNT = 2000
DEFAULT_SIZE_MIB = 1024
#: Memory-mapped loads take about a millisecond, so noise dominates: they run at least this often.
MMAP_MIN_REPEAT = 5
SEED = 20240501
DATAFRAME_ROWS = 10_000_000
DATAFRAME_COLUMNS = 10
#: Samples the ``forest`` case is fitted on at the default ``--size-mib`` (about 230 MB of trees).
FOREST_SAMPLES = 100_000


# ---- tools -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """One way to save and load a Python object."""

    name: str
    suffix: str
    dump: Callable[[Any, str], object]
    load: Callable[[str], Any]
    mmap_load: Callable[[str], Any] | None = None
    compressed: bool = False
    #: Measured once, whatever ``--repeat`` says.
    slow: bool = False
    #: Differs from another tool only in how it writes: its loads are not measured.
    dump_only: bool = False

    @property
    def reference(self) -> str:
        """The joblib tool this one's speed is compared with."""
        return "joblib c=3" if self.compressed else "joblib"

    def supports(self, operation: Operation) -> bool:
        if operation.kind == "dump":
            return True
        return not self.dump_only and (self.mmap_load is not None or not operation.mapped)


def _pickle_dump(value: Any, path: str) -> None:
    with open(path, "wb") as file:
        pickle.dump(value, file, protocol=5)


def _pickle_load(path: str) -> Any:
    with open(path, "rb") as file:
        return pickle.load(file)


def _numpy_save(value: np.ndarray, path: str) -> None:
    np.save(path, value)


def _h5py_dump(value: np.ndarray, path: str) -> None:
    with h5py.File(path, "w") as file:
        file.create_dataset("x", data=value)  # contiguous: no chunks, no filter


def _h5py_load(path: str) -> np.ndarray:
    with h5py.File(path, "r") as file:
        return file["x"][()]


_zoblib_mmap = functools.partial(zoblib.load, mmap_mode="r")

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("zoblib", ".pkl", zoblib.dump, zoblib.load, _zoblib_mmap),
        Tool("zoblib .zarr", ".zarr", zoblib.dump, zoblib.load, _zoblib_mmap),
        # No tool fsyncs by default; this row shows what zoblib's fsync=True (power-cut safety) costs.
        Tool(
            "zoblib fsync=True",
            ".pkl",
            functools.partial(zoblib.dump, fsync=True),
            zoblib.load,
            dump_only=True,
        ),
        Tool(
            "zoblib c=3",
            ".pkl",
            functools.partial(zoblib.dump, compress=3),
            zoblib.load,
            _zoblib_mmap,
            compressed=True,
        ),
        Tool("joblib", ".pkl", joblib.dump, joblib.load, functools.partial(joblib.load, mmap_mode="r")),
        # No mmap_load: joblib cannot map a compressed file and loads it whole instead.
        Tool(
            "joblib c=3",
            ".pkl",
            functools.partial(joblib.dump, compress=3),
            joblib.load,
            compressed=True,
            slow=True,
        ),
        Tool(
            "np.save",
            ".npy",
            _numpy_save,
            np.load,
            functools.partial(np.load, mmap_mode="r"),
        ),
        Tool("pickle-5", ".pkl", _pickle_dump, _pickle_load),
        Tool("h5py", ".h5", _h5py_dump, _h5py_load),
    )
}


# ---- cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    name: str
    kind: str  # "dump", "load", "mmap-load" or "mmap+slice"
    fraction: float = 1.0  # of the case's data

    @property
    def mapped(self) -> bool:
        return self.kind.startswith("mmap")


DUMP = Operation("dump", "dump")
LOAD = Operation("load", "load")
MMAP_QUARTER = Operation("mmap-load 1/4", "mmap-load", 0.25)
MMAP = Operation("mmap-load", "mmap-load")
MMAP_SLICE = Operation("mmap+slice", "mmap+slice")


def _random_block(rng: np.random.Generator, start: int, stop: int) -> np.ndarray:
    return rng.random(stop - start)


def _decimal_block(rng: np.random.Generator, start: int, stop: int) -> np.ndarray:
    t = np.arange(start, stop, dtype=np.float64)
    signal = 20.0 + 5.0 * np.sin(t / 1e5) + rng.normal(0.0, 0.05, stop - start)
    return np.round(signal, 4)


def _write_input(path: str, items: int, block: Callable[[np.random.Generator, int, int], np.ndarray]) -> None:
    """Write ``items`` float64 values, made ``INPUT_BLOCK_ITEMS`` at a time, as raw bytes."""
    rng = np.random.default_rng(SEED)
    with open(path, "wb") as file:
        for start in range(0, items, INPUT_BLOCK_ITEMS):
            block(rng, start, min(start + INPUT_BLOCK_ITEMS, items)).tofile(file)


def _read_array(path: str, fraction: float) -> np.ndarray:
    items = os.path.getsize(path) // FLOAT64_NBYTES
    return np.fromfile(path, dtype=np.float64, count=int(items * fraction))


def _read_list(path: str, fraction: float) -> list[np.ndarray]:
    count = os.path.getsize(path) // (MID_ARRAY_ITEMS * FLOAT64_NBYTES)
    with open(path, "rb") as file:
        return [
            np.fromfile(file, dtype=np.float64, count=MID_ARRAY_ITEMS) for _ in range(int(count * fraction))
        ]


def _write_forest(path: str, mib: int) -> None:
    """A scikit-learn random forest of 200 fully grown trees, pickled as input: fitted on
    100,000 samples of 20 features at the default size (about 230 MB of trees, the size of the
    forest the issue measured), on fewer in proportion to ``--size-mib``."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    samples = max(FOREST_SAMPLES * mib // DEFAULT_SIZE_MIB, 2_000)
    features, labels = make_classification(n_samples=samples, n_features=20, random_state=SEED)
    forest = RandomForestClassifier(n_estimators=200, random_state=SEED, n_jobs=-1).fit(features, labels)
    with open(path, "wb") as file:
        pickle.dump(forest, file, protocol=5)


def _read_pickled(path: str, fraction: float) -> Any:
    with open(path, "rb") as file:
        return pickle.load(file)


def _write_frame(path: str, mib: int) -> None:
    """Raw float64 input for a DataFrame of 10 columns (10 million rows at the default size)."""
    rows = DATAFRAME_ROWS * mib // DEFAULT_SIZE_MIB
    _write_input(path, rows * DATAFRAME_COLUMNS, _random_block)


def _read_frame(path: str, fraction: float) -> Any:
    import pandas as pd

    values = np.fromfile(path, dtype=np.float64).reshape(DATAFRAME_COLUMNS, -1)
    return pd.DataFrame({f"c{i}": column for i, column in enumerate(values)})


def _small_dict(path: str, fraction: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return {f"a{i}": rng.random(100) for i in range(int(10_000 * fraction))}


@dataclass(frozen=True)
class Case:
    """One object to save: how its input file is written and how it is rebuilt from it."""

    name: str
    tools: tuple[str, ...]
    operations: tuple[Operation, ...]
    #: ``build(input_path, fraction)``: the object (or the first ``fraction`` of it).
    build: Callable[[str, float], Any]
    #: ``write_input(path, size_mib)``, or ``None`` when ``build`` makes the object itself.
    write_input: Callable[[str, int], None] | None = None


BIG_TOOLS = (
    "zoblib",
    "zoblib .zarr",
    "zoblib fsync=True",
    "zoblib c=3",
    "joblib",
    "joblib c=3",
    "np.save",
    "pickle-5",
    "h5py",
)
BIG_OPERATIONS = (DUMP, LOAD, MMAP_QUARTER, MMAP, MMAP_SLICE)

CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case(
            "big-random",
            BIG_TOOLS,
            BIG_OPERATIONS,
            _read_array,
            lambda path, mib: _write_input(path, mib * MIB // FLOAT64_NBYTES, _random_block),
        ),
        Case(
            "big-decimal",
            BIG_TOOLS,
            BIG_OPERATIONS,
            _read_array,
            lambda path, mib: _write_input(path, mib * MIB // FLOAT64_NBYTES, _decimal_block),
        ),
        Case(
            "mid-list",
            ("zoblib", "zoblib .zarr", "zoblib fsync=True", "joblib", "pickle-5"),
            (DUMP, LOAD, MMAP),
            _read_list,
            lambda path, mib: _write_input(
                path,
                max(MID_ARRAY_COUNT * mib // DEFAULT_SIZE_MIB, 8) * MID_ARRAY_ITEMS,
                _random_block,
            ),
        ),
        Case("many-small", ("zoblib", "joblib", "pickle-5"), (DUMP, LOAD), _small_dict),
        Case("forest", ("zoblib", "joblib", "pickle-5"), (DUMP, LOAD), _read_pickled, _write_forest),
        Case("dataframe", ("zoblib", "joblib", "pickle-5"), (DUMP, LOAD), _read_frame, _write_frame),
    )
}


# ---- one run, in a child process ---------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One run of one operation, as sent to the child process."""

    case: str
    tool: str
    kind: str
    path: str
    input_path: str
    fraction: float = 1.0


def _nbytes(value: Any) -> int:
    if not isinstance(value, (dict, list, np.ndarray)):  # a model, a DataFrame: its pickle's size
        return len(pickle.dumps(value, protocol=5))
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, list):
        return sum(_nbytes(v) for v in value)
    return math.prod(value.shape) * value.dtype.itemsize


def _load_and_read_middle(tool: Tool, path: str) -> Any:
    assert tool.mmap_load is not None
    mapped = tool.mmap_load(path)
    middle = len(mapped) // 2
    np.array(mapped[middle : middle + SLICE_ITEMS])
    return mapped


def run_task(task: Task) -> tuple[Sample, int]:
    """Build the task's input, run it once; return its sample and the data's size in bytes."""
    case, tool = CASES[task.case], TOOLS[task.tool]
    sizes = [disk_usage(path) for path in (task.input_path, task.path) if os.path.exists(path)]
    warm_nbytes = int(WARM_FACTOR * max(sizes, default=0)) if task.kind in ("dump", "load") else 0
    baseline = rss_bytes()
    if task.kind == "dump":
        value = case.build(task.input_path, task.fraction)
        # Warmed after the input is built, so that the pages the dump's file takes are these
        # (warmed first, building the input took them and the dump faulted in the host's).
        warm_memory(warm_nbytes)
        _, sample = measure(lambda: tool.dump(value, task.path), baseline=baseline)
        return sample, _nbytes(value)
    warm_memory(warm_nbytes)
    operations: dict[str, Callable[[], Any]] = {
        "load": lambda: tool.load(task.path),
        "mmap-load": lambda: tool.mmap_load(task.path),  # type: ignore[misc]
        "mmap+slice": lambda: _load_and_read_middle(tool, task.path),
    }
    loaded, sample = measure(operations[task.kind], baseline=baseline)
    return sample, _nbytes(loaded)


# ---- the benchmark, in the parent --------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    case: str
    tool: str
    operation: Operation
    samples: list[Sample]
    data_nbytes: int
    file_nbytes: int | None = None  # dump rows only

    @property
    def seconds(self) -> float:
        return median_seconds(self.samples)

    @property
    def best_seconds(self) -> float:
        """The fastest run: the cost least disturbed by writeback and neighbours."""
        return min(s.seconds for s in self.samples)

    @property
    def peak_ratio(self) -> float:
        return max_peak_above_baseline(self.samples) / self.data_nbytes


Results = dict[tuple[str, str, str], Result]  # by (case, tool, operation name)

_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:7.1f} s] {message}", file=sys.stderr, flush=True)


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


def _archive_path(workdir: str, case: Case, tool: Tool, fraction: float) -> str:
    stem = re.sub(r"[^\w]+", "-", f"{case.name}-{tool.name}")
    return os.path.join(workdir, stem + ("" if fraction == 1 else "-part") + tool.suffix)


def bench_operation(
    case: Case, operation: Operation, tools: Sequence[Tool], input_path: str, workdir: str, repeat: int
) -> list[Result]:
    """One operation for every tool, the tools taking turns run after run.

    Taking turns spreads each tool's runs over the same stretch of time, so the load that other
    processes put on the machine weighs on every tool alike and the ratios stay fair.
    """
    tools = [tool for tool in tools if tool.supports(operation)]
    paths = {tool.name: _archive_path(workdir, case, tool, operation.fraction) for tool in tools}
    for tool in tools:
        if operation.kind != "dump" and not os.path.exists(paths[tool.name]):  # written untimed
            dump = Task(case.name, tool.name, "dump", paths[tool.name], input_path, operation.fraction)
            run_isolated(run_task, dump)
    runs = max(repeat, MMAP_MIN_REPEAT) if operation.mapped else repeat
    samples: dict[str, list[Sample]] = {tool.name: [] for tool in tools}
    sizes: dict[str, set[int]] = {tool.name: set() for tool in tools}
    for run in range(runs):
        for tool in tools:
            if tool.slow and run > 0:
                continue
            task = Task(
                case.name, tool.name, operation.kind, paths[tool.name], input_path, operation.fraction
            )
            if operation.kind == "dump":
                # A new file each time: overwriting would time zoblib's atomic replace (the old
                # file stays until the new one is complete) against the others' truncation.
                _remove(task.path)
            os.sync()  # earlier runs' dirty pages must not be written back during this one
            sample, nbytes = run_isolated(run_task, task)
            samples[tool.name].append(sample)
            sizes[tool.name].add(nbytes)
    results = []
    for tool in tools:
        if len(sizes[tool.name]) != 1:
            raise RuntimeError(f"{case.name} / {tool.name}: runs saw different data sizes {sizes}")
        file_nbytes = disk_usage(paths[tool.name]) if operation.kind == "dump" else None
        result = Result(
            case.name, tool.name, operation, samples[tool.name], sizes[tool.name].pop(), file_nbytes
        )
        _progress(
            f"{case.name} / {tool.name} / {operation.name}: {format_seconds(result.seconds)}, "
            f"peak {result.peak_ratio:.2f}x data ({len(result.samples)} runs)"
        )
        results.append(result)
    return results


def bench_case(case: Case, tools: Sequence[str], size_mib: int, repeat: int, workdir: str) -> list[Result]:
    """Every operation of ``case`` for the ``tools`` it takes; files are deleted at the end."""
    input_path = os.path.join(workdir, f"{case.name}.input")
    if case.write_input is not None:
        _progress(f"{case.name}: writing the input ({size_mib} MiB)")
        case.write_input(input_path, size_mib)
    chosen = [TOOLS[name] for name in case.tools if name in tools]
    try:
        results = []
        for operation in case.operations:
            results += bench_operation(case, operation, chosen, input_path, workdir, repeat)
        return results
    finally:
        _remove(input_path)
        for tool in chosen:
            for operation in case.operations:
                _remove(_archive_path(workdir, case, tool, operation.fraction))


# ---- reporting ---------------------------------------------------------------------------------


def speedup(results: Results, case: str, tool: str, operation: str, *, best: bool = False) -> float | None:
    """How many times faster than the matching joblib row (``None`` if either is missing), by
    median or, with ``best``, by fastest run."""
    row = results.get((case, tool, operation))
    reference = results.get((case, TOOLS[tool].reference, operation))
    if row is None or reference is None:
        return None
    if best:
        return reference.best_seconds / row.best_seconds
    return reference.seconds / row.seconds


def _table_row(results: Results, result: Result) -> list[str]:
    speed = "—"
    if not result.operation.mapped:
        speed = f"{result.data_nbytes / result.seconds / 1e9:.2f}"
    file = "—"
    if result.file_nbytes is not None:
        file = f"{format_bytes(result.file_nbytes)} ({result.file_nbytes / result.data_nbytes:.3f}x)"
    return [
        result.tool,
        result.operation.name,
        format_seconds(result.seconds),
        speed,
        format_ratio(speedup(results, result.case, result.tool, result.operation.name)),
        format_seconds(result.best_seconds),
        format_ratio(speedup(results, result.case, result.tool, result.operation.name, best=True)),
        file,
        format_ratio(result.peak_ratio),
        str(len(result.samples)),
    ]


def case_table(results: Results, case: str) -> str:
    order = list(TOOLS), CASES[case].operations
    ours = sorted(
        (r for r in results.values() if r.case == case),
        key=lambda r: (order[0].index(r.tool), order[1].index(r.operation)),
    )
    rows = [_table_row(results, r) for r in ours]
    headers = [
        "tool",
        "operation",
        "median",
        "GB/s",
        "vs joblib",
        "best",
        "best vs joblib",
        "file (x data)",
        "peak RSS",
        "runs",
    ]
    return markdown_table(headers, rows, align="llrrrrrrrr")


@dataclass(frozen=True)
class Target:
    """One target of the issue: met if every measured value in ``values`` passes."""

    description: str
    #: ``(label, value or None if not measured)``: what the verdict is about (zoblib's defaults).
    values: list[tuple[str, float | None]]
    passes: Callable[[float], bool]
    #: The same measure for zoblib's other variants, shown for reference only.
    also: list[tuple[str, float | None]] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        measured = [v for _, v in self.values if v is not None]
        if not measured:
            verdict = "not measured"
        else:
            verdict = "met" if all(self.passes(v) for v in measured) else "NOT met"
        line = f"- **{verdict}**: {self.description}: {_listing(self.values)}"
        return line + (f" (for reference: {_listing(self.also)})" if _listing(self.also) else "")


def _listing(values: list[tuple[str, float | None]]) -> str:
    return ", ".join(f"{label} {format_ratio(v)}" for label, v in values if v is not None)


def targets(results: Results) -> list[Target]:
    """The issue's targets, as ratios measured in this run."""
    big = [c for c in ("big-random", "big-decimal") if any(key[0] == c for key in results)]

    def speedups(cases: Iterable[str], tools: Iterable[str], operations: Iterable[str]) -> list[Any]:
        return [(f"{c} {t} {o}", speedup(results, c, t, o)) for c in cases for t in tools for o in operations]

    def relative(cases: Iterable[str], tool: str, reference: str, operation: str) -> list[Any]:
        found = [
            (c, results.get((c, tool, operation)), results.get((c, reference, operation))) for c in cases
        ]
        return [
            (f"{c} {tool} {operation}", theirs.seconds / ours.seconds if ours and theirs else None)
            for c, ours, theirs in found
        ]

    def file_ratio(case: str) -> float | None:
        ours, theirs = results.get((case, "zoblib c=3", "dump")), results.get((case, "joblib c=3", "dump"))
        if ours is None or theirs is None or ours.file_nbytes is None or theirs.file_nbytes is None:
            return None
        return ours.file_nbytes / theirs.file_nbytes

    def mmap_growth(tools: Iterable[str]) -> list[Any]:
        found = [
            (c, t, results.get((c, t, MMAP.name)), results.get((c, t, MMAP_QUARTER.name)))
            for c in big
            for t in tools
        ]
        return [
            (f"{c} {t}", full.seconds / part.seconds if full and part else None) for c, t, full, part in found
        ]

    def peaks(tools: Iterable[str]) -> list[Any]:
        found = [
            (f"{c} {t} {o}", results.get((c, t, o))) for c in big for t in tools for o in ("dump", "load")
        ]
        return [(label, row.peak_ratio if row else None) for label, row in found]

    default, others = ["zoblib", "zoblib c=3"], ["zoblib .zarr", "zoblib fsync=True"]
    return [
        Target(
            "uncompressed dump at least 1.5x joblib's speed",
            speedups(big, ["zoblib"], ["dump"]),
            lambda v: v >= 1.5,
            speedups(big, others, ["dump"]),
        ),
        Target(
            "uncompressed dump within 0.8x of `np.save` (zoblib's speed / np.save's)",
            relative(big, "zoblib", "np.save", "dump"),
            lambda v: v >= 0.8,
        ),
        Target(
            "load at least as fast as joblib (`compress=3` against joblib's `compress=3`)",
            speedups(big, default, ["load"]),
            lambda v: v >= 1,
            speedups(big, others, ["load"]),
        ),
        Target(
            "uncompressed load within 0.8x of `np.load` (zoblib's speed / np.load's)",
            relative(big, "zoblib", "np.save", "load"),
            lambda v: v >= 0.8,
        ),
        Target(
            "`compress=3` dump at least 3x joblib's `compress=3`",
            speedups(big, ["zoblib c=3"], ["dump"]),
            lambda v: v >= 3,
        ),
        Target(
            "`compress=3` file no larger than joblib's `compress=3` (size ratio)",
            [(c, file_ratio(c)) for c in big],
            lambda v: v <= 1,
        ),
        Target(
            "mmap load time does not grow with size (time at full size / at 1/4, < 2x)",
            mmap_growth(default),
            lambda v: v < 2,
            mmap_growth(others),
        ),
        Target(
            "peak RSS of dump and load at most 1.1x the data",
            peaks(default),
            lambda v: v <= 1.1,
            peaks(others),
        ),
        Target(
            "mid-list: dump at least 1.5x joblib's speed",
            speedups(["mid-list"], ["zoblib"], ["dump"]),
            lambda v: v >= 1.5,
            speedups(["mid-list"], others, ["dump"]),
        ),
        Target(
            "mid-list, many-small, forest, dataframe: dump and load no slower than joblib",
            speedups(["mid-list", "many-small", "forest", "dataframe"], ["zoblib"], ["dump", "load"]),
            lambda v: v >= 1,
        ),
    ]


NOTES = """\
Notes: medians of the runs shown; every run in a fresh process, the tools taking turns. "vs joblib":
joblib's median time divided by this row's (above 1: faster than joblib), against joblib
`compress=3` for compressed rows; "best" and "best vs joblib": the same for the fastest run of each
row, the cost least disturbed by writeback and other work on the machine. GB/s: data bytes (1e9)
per second. "peak RSS": the process's peak RSS during the operation minus its RSS before the input
was built, as a multiple of the data's size (the largest of the runs). Dumps write a new file;
loads are hot: the file was just written and is in the page cache. No dump fsyncs but the
`zoblib fsync=True` row's."""


def report(results: Results, cases: Sequence[str], arguments: str, source: str) -> str:
    parts = [
        "## Environment",
        describe_environment(["numpy", "zarr", "numcodecs", "h5py", "joblib", "zoblib"]),
        f"Measured: {source}. Arguments: `{arguments}`.",
        NOTES,
    ]
    for case in cases:
        parts += [f"## {case}", case_table(results, case)]
    parts += ["## Targets", "\n".join(t.line() for t in targets(results))]
    return "\n\n".join(parts)


def save_json(results: Results, path: str, arguments: str, source: str) -> None:
    """Write every row of ``results`` to ``path``: what ``benchmarks/plot_results.py`` draws."""
    rows = [
        {
            "case": r.case,
            "tool": r.tool,
            "operation": r.operation.name,
            "median_seconds": r.seconds,
            "best_seconds": r.best_seconds,
            "runs": len(r.samples),
            "data_nbytes": r.data_nbytes,
            "file_nbytes": r.file_nbytes,
            "peak_ratio": r.peak_ratio,
            "vs_joblib": speedup(results, r.case, r.tool, r.operation.name),
        }
        for r in results.values()
    ]
    environment = describe_environment(["numpy", "zarr", "numcodecs", "h5py", "joblib", "zoblib"])
    document = {"benchmark": "bench_archive", "environment": environment, "arguments": arguments}
    with open(path, "w") as file:
        json.dump({**document, "source": source, "rows": rows}, file, indent=1)
        file.write("\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=DEFAULT_SIZE_MIB, help="size of the big arrays")
    parser.add_argument("--repeat", type=int, default=3, help="runs per operation (median reported)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(CASES),
        default=list(CASES),
        metavar="NAME",
        help=f"cases to run: {', '.join(CASES)}",
    )
    parser.add_argument(
        "--tools",
        nargs="+",
        choices=list(TOOLS),
        default=list(TOOLS),
        metavar="NAME",
        help=f"tools to run: {', '.join(TOOLS)}",
    )
    parser.add_argument("--tmpdir", default=None, help="where to write (a fresh directory is made inside)")
    parser.add_argument(
        "--save-json",
        default=None,
        metavar="PATH",
        help="also write every row, with the environment, to this JSON file (benchmarks/plot_results.py)",
    )
    parser.add_argument(
        "--zoblib-rev",
        default=None,
        metavar="REV",
        help="measure zoblib as committed at this git revision (e.g. HEAD), not the working tree",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="zoblib-bench-", dir=args.tmpdir)
    try:
        source = snapshot_package(zoblib, os.path.join(workdir, "source"), args.zoblib_rev)
        _progress(f"measuring {source}")
        results: Results = {}
        for name in args.only:
            for result in bench_case(CASES[name], args.tools, args.size_mib, args.repeat, workdir):
                results[(result.case, result.tool, result.operation.name)] = result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    arguments = f"--size-mib {args.size_mib} --repeat {args.repeat}"
    print(report(results, args.only, arguments, source))
    if args.save_json:
        save_json(results, args.save_json, arguments, source)


if __name__ == "__main__":
    main()
