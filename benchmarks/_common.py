"""Helpers shared by the benchmark scripts: isolated runs, timing, peak RSS and markdown tables.

Every measured operation should run in a fresh process (:func:`run_isolated`), so that neither
the parent's memory nor the allocator state an earlier operation left behind pollutes it. Inside
that process, :func:`measure` times the operation and records the process's peak resident memory
while it runs::

    def child(path):
        baseline = rss_bytes()          # interpreter and imports
        data = make_input()             # what must be in memory before the operation
        _, sample = measure(lambda: save(data, path), baseline=baseline)
        return sample

    samples = [run_isolated(child, path) for _ in range(3)]
    print(median_seconds(samples))
"""

from __future__ import annotations

import concurrent.futures
import datetime
import hashlib
import importlib.metadata
import io
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import psutil

T = TypeVar("T")

#: How often the sampler thread reads the process's RSS.
SAMPLE_INTERVAL_SECONDS = 0.005


# ---- processes ---------------------------------------------------------------------------------


def run_isolated(function: Callable[..., T], /, *args: Any) -> T:
    """Call ``function(*args)`` in a fresh spawned process and return its result.

    ``function`` and ``args`` must be picklable (a module-level function; a script's own
    functions work when the script guards its entry point with ``if __name__ == "__main__"``).
    Exceptions raised in the child are raised here.
    """
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def snapshot_package(package: ModuleType, destination: str, revision: str | None = None) -> str:
    """Copy an imported package's source into ``destination`` and put that first on ``sys.path``.

    Processes spawned afterwards (they inherit ``sys.path``) import the copy, so that edits to
    the working tree during a long benchmark cannot mix two versions in one table. With a git
    ``revision`` (``"HEAD"``), the package is exported as committed there instead of copied from
    the working tree. Returns a description of the copy: where it came from, its git state, and a
    digest of its sources.
    """
    assert package.__file__ is not None
    source = os.path.dirname(os.path.abspath(package.__file__))
    copy = os.path.join(destination, package.__name__)
    if revision is None:
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
        state = _git_state(source)
    else:
        top = _git(source, "rev-parse", "--show-toplevel")
        commit = _git(source, "rev-parse", "--short", revision)
        archive = subprocess.run(
            ["git", "-C", top, "archive", "--format=tar", f"{commit}:{os.path.relpath(source, top)}"],
            capture_output=True,
            check=True,
        )
        os.makedirs(copy)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(copy, filter="data")
        state = f"commit {commit} as committed"
    sys.path.insert(0, destination)
    digest = hashlib.sha256()
    for root, dirs, names in os.walk(copy):
        dirs.sort()
        for name in sorted(names):
            with open(os.path.join(root, name), "rb") as file:
                digest.update(file.read())
    return f"{package.__name__} from {source} at {state}, sources sha256 {digest.hexdigest()[:12]}"


def _git(path: str, *args: str) -> str:
    done = subprocess.run(["git", "-C", path, *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _git_state(path: str) -> str:
    try:
        commit = _git(path, "rev-parse", "--short", "HEAD")
        changed = _git(path, "status", "--porcelain", "--", ".").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    return f"commit {commit}" + (f" + {len(changed)} uncommitted files" if changed else "")


# ---- memory ------------------------------------------------------------------------------------


#: Memory written and freed before each timed dump and load, as a multiple of the data (see warm_memory).
WARM_FACTOR = 1.25


def warm_memory(nbytes: int) -> None:
    """Write ``nbytes`` of new memory, then free it.

    Memory this process has not touched yet can cost far more to fault in than the work done
    with it: on this machine (a Firecracker VM with free page reporting) pages freed by a process
    that exited are handed back to the host after about 2 s, and faulting them in again takes
    1.4-2.0 s of system time per GiB instead of 0.1-0.5 s (measured for issue 12). Which
    tool's child got which kind of page then depended on timing, not on the tool: one run
    measured a DataFrame's load at 1.42 s for zoblib and 0.26 s for joblib, and the same file
    loaded in 0.46 s by zoblib and 0.86 s by joblib in another. Freed just before the timed
    operation, these pages are the guest kernel's own again, for every tool alike.
    """
    if nbytes > 0:
        block = np.ones(nbytes, dtype=np.uint8)
        del block


def rss_bytes() -> int:
    """This process's resident set size now (anonymous and file-backed pages), in bytes."""
    return int(psutil.Process().memory_info().rss)


def _high_water_rss_bytes() -> int:
    # The kernel's exact high-water mark since the process started (KiB on Linux, bytes on macOS).
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(value if sys.platform == "darwin" else value * 1024)


class PeakRSS:
    """Context manager recording this process's peak RSS while its block runs, as ``peak``.

    A thread samples RSS every :data:`SAMPLE_INTERVAL_SECONDS`. The kernel's high-water mark
    (``ru_maxrss``) covers the whole process life, so it cannot tell the block's peak on its own;
    but when the block raises it, the new mark *is* the block's exact peak, spikes shorter than
    the sampling interval included.
    """

    def __enter__(self) -> PeakRSS:
        self._stop = threading.Event()
        self._high_water_before = _high_water_rss_bytes()
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(SAMPLE_INTERVAL_SECONDS):
            self.peak = max(self.peak, process.memory_info().rss)

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        high_water = _high_water_rss_bytes()
        if high_water > self._high_water_before:
            self.peak = max(self.peak, high_water)


# ---- timing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One timed run of an operation, with the process's memory around it (bytes)."""

    seconds: float
    #: RSS before the input was built: the interpreter and the imported modules.
    baseline_rss: int
    #: RSS just before the operation (its input already in memory).
    start_rss: int
    #: Peak RSS while the operation ran (its input and its result included).
    peak_rss: int

    @property
    def peak_above_baseline(self) -> int:
        return self.peak_rss - self.baseline_rss


def measure(operation: Callable[[], T], *, baseline: int) -> tuple[T, Sample]:
    """Run ``operation()`` once; return its result (still alive) and its :class:`Sample`.

    ``baseline`` is :func:`rss_bytes` taken before the operation's input was built.
    """
    start_rss = rss_bytes()
    with PeakRSS() as peak:
        start = time.perf_counter()
        result = operation()
        seconds = time.perf_counter() - start
    return result, Sample(seconds, baseline, start_rss, peak.peak)


def median_seconds(samples: Sequence[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def max_peak_above_baseline(samples: Sequence[Sample]) -> int:
    return max(s.peak_above_baseline for s in samples)


# ---- files -------------------------------------------------------------------------------------


def disk_usage(path: str) -> int:
    """Bytes of a file, or of all files under a directory."""
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names
    )


# ---- reporting ---------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> str:
    """A markdown table; ``align`` holds one of ``l``/``r`` per column (default: left)."""
    marks = {"l": "---", "r": "--:"}
    rule = [marks[align[i]] if i < len(align) else "---" for i in range(len(headers))]
    lines = [headers, rule, *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def format_seconds(seconds: float) -> str:
    if seconds < 0.01:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


def format_bytes(nbytes: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(nbytes) >= size:
            return f"{nbytes / size:.2f} {unit}"
    return f"{nbytes:.0f} B"


def format_ratio(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}x"


def describe_environment(packages: Sequence[str]) -> str:
    """One markdown paragraph: date, machine and the versions of Python and ``packages``."""
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    memory = psutil.virtual_memory().total / (1 << 30)
    return (
        f"{datetime.date.today().isoformat()}; {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {memory:.0f} GiB RAM; Python {platform.python_version()}, "
        + ", ".join(versions)
        + "."
    )
