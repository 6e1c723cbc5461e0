"""Parallel on clusters and archives on S3: zoblib against joblib's engines, side by side (issue 14).

Engines, each in a fresh process with a fresh cluster of 2 single-threaded workers on this
machine (``distributed.LocalCluster(n_workers=2, threads_per_worker=1)`` or
``ray.init(num_cpus=2)``):

- ``zoblib dask``: ``zoblib.Parallel`` in ``parallel_config(backend="dask")``.
- ``joblib dask``: ``joblib.Parallel`` in ``joblib.parallel_config(backend="dask")`` (joblib
  scatters big arguments itself); ``joblib dask scatter`` adds ``scatter=[X]`` (big-argument case).
- ``zoblib ray``: ``zoblib.Parallel`` in ``parallel_config(backend="ray")``.
- ``ray.util.joblib``: ``joblib.Parallel`` after ``ray.util.joblib.register_ray()``, in
  ``joblib.parallel_config(backend="ray")``.
- ``ray object store``: plain ray, no joblib API: the big argument ``ray.put`` once and passed
  to 16 ``@ray.remote`` tasks, results taken with ``ray.get`` (zero-copy, read-only views of the
  object store). What zoblib's ray backend would do if it used the object store for arrays.

Cases (``--size-mib`` is the big argument's size; 1024 is the issue's):

- ``big-argument``: 16 tasks each summing a sixteenth of one float64 array of ``--size-mib``.
- ``big-results``: 16 tasks each returning an array of ``--size-mib``/8; the caller sums each.
- ``tiny``: 1,000 tasks adding one to a number.

Time is the median of ``--repeat`` calls on the same cluster after a warm-up call. Memory is
the peak growth during the calls of the driver's RSS (which holds dask's scheduler for a
``LocalCluster``, and the caller's data) and of the proportional set size (``Pss`` of
``/proc/<pid>/smaps_rollup``: pages shared between processes counted once) of all the other
processes of the cluster (workers, nannies, ray's raylet and object store), sampled every 20 ms.

S3 (moto's server on loopback, in the measuring process): ``zoblib.dump``/``zoblib.load`` of a
float64 array of ``--size-mib``/4 to an ``s3://`` URL against ``joblib.dump``/``joblib.load``
through an s3fs file object, and the HTTP requests (counted in s3fs's client) to read a 1 MiB
slice: zoblib lazily (``mmap_mode="r"``), joblib by loading the whole file.

Usage::

    python benchmarks/bench_distributed.py                    # the issue's sizes (~6 GiB of RAM)
    python benchmarks/bench_distributed.py --size-mib 64      # quick: a couple of minutes
    python benchmarks/bench_distributed.py --engines "zoblib ray" "ray.util.joblib" --save-json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psutil

from _common import describe_environment, format_bytes, format_ratio, format_seconds, markdown_table

CASES = ("big-argument", "big-results", "tiny")
ENGINES = (
    "zoblib dask",
    "joblib dask",
    "joblib dask scatter",
    "zoblib ray",
    "ray.util.joblib",
    "ray object store",
)
#: Which engine each one is compared with ("speed-up" column).
REFERENCE = {
    "zoblib dask": "joblib dask",
    "joblib dask scatter": "joblib dask",
    "zoblib ray": "ray.util.joblib",
}
#: More ratios printed under the table: (case, engine, the engine it is compared with).
COMPARISONS = (
    ("big-argument", "zoblib dask", "joblib dask scatter"),
    ("big-argument", "zoblib ray", "ray object store"),
    ("big-results", "zoblib ray", "ray object store"),
    ("tiny", "zoblib ray", "ray object store"),
)
N_TASKS = 16
N_TINY = 1000
MIB = 1024**2
HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGES = ["numpy", "dask", "distributed", "ray", "joblib", "s3fs", "moto", "zoblib"]


# -- tasks (module level; the workers import this module by name) ------------------------------


def add_one(x: int) -> int:
    return x + 1


def sum_part(array: np.ndarray, part: int, parts: int) -> float:
    size = len(array) // parts
    return float(array[part * size : (part + 1) * size].sum())


def make_result(nbytes: int, value: int) -> np.ndarray:
    return np.full(nbytes // 8, float(value))


# -- memory of the cluster ----------------------------------------------------------------------


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass  # a process that just ended
    return 0


class ClusterMemory:
    """Sample the driver's RSS and the summed Pss of its descendant processes, in a thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.me = psutil.Process()
        self.driver_peak = 0
        self.cluster_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _now(self) -> tuple[int, int]:
        cluster = sum(_pss(child.pid) for child in self.me.children(recursive=True))
        return int(self.me.memory_info().rss), cluster

    def __enter__(self) -> ClusterMemory:
        self.driver_base, self.cluster_base = self._now()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        driver, cluster = self._now()
        self.driver_peak = max(self.driver_peak, driver - self.driver_base)
        self.cluster_peak = max(self.cluster_peak, cluster - self.cluster_base)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


# -- engines (in the child process) -------------------------------------------------------------


Runner = Callable[[list[Any], dict[str, Any]], list[Any]]


@contextmanager
def engine(name: str) -> Iterator[tuple[Runner, Callable[..., Any]]]:
    """Start the engine's cluster; yield ``run(tasks, options)`` and its ``delayed``."""
    if "dask" in name:
        import distributed

        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster),
        ):
            yield _runner(name), _delayed(name)
        return
    import ray

    # The workers import this module (its tasks) by name, from this folder.
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": HERE}},
    )
    try:
        if name == "ray.util.joblib":
            from ray.util.joblib import register_ray

            register_ray()
        if name == "ray object store":
            yield _object_store_runner(), _object_store_delayed
        else:
            yield _runner(name), _delayed(name)
    finally:
        ray.shutdown()


def _object_store_delayed(function: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *args: (function, args)


def _object_store_runner() -> Runner:
    import ray

    remotes: dict[Any, Any] = {}

    def run(tasks: list[Any], options: dict[str, Any]) -> list[Any]:
        # Each big array goes into the object store once per call, as joblib's scatter would.
        stored: dict[int, Any] = {}

        def by_reference(value: Any) -> Any:
            if isinstance(value, np.ndarray) and value.nbytes > MIB:
                if id(value) not in stored:
                    stored[id(value)] = ray.put(value)
                return stored[id(value)]
            return value

        refs = []
        for function, args in tasks:
            if function not in remotes:
                remotes[function] = ray.remote(function)
            refs.append(remotes[function].remote(*[by_reference(arg) for arg in args]))
        return list(ray.get(refs))

    return run


def _delayed(name: str) -> Callable[..., Any]:
    if name.startswith("zoblib"):
        from zoblib import delayed
    else:
        from joblib import delayed
    return delayed  # type: ignore[no-any-return]


def _runner(name: str) -> Runner:
    backend = name.split()[1] if name.startswith(("zoblib", "joblib")) else "ray"

    def run(tasks: list[Any], options: dict[str, Any]) -> list[Any]:
        if name.startswith("zoblib"):
            from zoblib import Parallel, parallel_config

            with parallel_config(backend=backend):
                return list(Parallel(n_jobs=2)(tasks))
        import joblib

        with joblib.parallel_config(backend=backend, n_jobs=2, **options):
            return list(joblib.Parallel()(tasks))

    return run


def measure_engine(name: str, cases: Sequence[str], size_mib: int, repeat: int) -> list[dict[str, Any]]:
    import bench_distributed as tasks  # by name, not __main__: what the workers can import

    rows = []
    with engine(name) as (run, delayed):
        run([delayed(tasks.add_one)(i) for i in range(20)], {})  # warm-up: workers up, imports done
        for case in cases:
            if case == "big-argument":
                data = np.random.default_rng(0).random(size_mib * MIB // 8)
                work = [delayed(tasks.sum_part)(data, part, N_TASKS) for part in range(N_TASKS)]
                options = {"scatter": [data]} if name.endswith("scatter") else {}
                data_nbytes = data.nbytes
            elif case == "big-results":
                nbytes = size_mib * MIB // 8
                work = [delayed(tasks.make_result)(nbytes, value) for value in range(N_TASKS)]
                options, data_nbytes = {}, N_TASKS * nbytes
            else:
                work = [delayed(tasks.add_one)(i) for i in range(N_TINY)]
                options, data_nbytes = {}, 0
            seconds = []
            with ClusterMemory() as memory:
                for _ in range(repeat):
                    started = time.perf_counter()
                    results = run(work, options)
                    if case == "big-results":
                        sum(float(result.sum()) for result in results)
                        writable = all(result.flags.writeable for result in results)
                    seconds.append(time.perf_counter() - started)
                    del results
            rows.append(
                {
                    "case": case,
                    "engine": name,
                    "median_seconds": statistics.median(seconds),
                    "seconds": seconds,
                    "driver_peak_growth": memory.driver_peak,
                    "cluster_peak_growth": memory.cluster_peak,
                    "data_nbytes": data_nbytes,
                    **({"results_writable": writable} if case == "big-results" else {}),
                }
            )
            del work
    return rows


# -- S3 (in the child process) ------------------------------------------------------------------


def measure_s3(size_mib: int, repeat: int) -> list[dict[str, Any]]:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
    import joblib

    import zoblib
    from s3_server import running_s3_server

    array = np.random.default_rng(0).random(max(size_mib // 4, 2) * MIB // 8)
    rows = []
    with running_s3_server() as server:
        fs = server.filesystem()
        fs.ls(server.url("").split("/")[2])  # creates the client, whose requests are counted
        seen: list[str] = []
        fs.s3.meta.events.register("before-send.s3", lambda request, **_: seen.append(request.method))

        def zoblib_dump(url: str) -> None:
            zoblib.dump(array, url, storage_options=server.options)

        def zoblib_load(url: str) -> Any:
            return zoblib.load(url, storage_options=server.options)

        def joblib_dump(url: str) -> None:
            with fs.open(url, "wb") as file:
                joblib.dump(array, file)

        def joblib_load(url: str) -> Any:
            with fs.open(url, "rb") as file:
                return joblib.load(file)

        def zoblib_slice(url: str) -> Any:
            return np.array(
                zoblib.load(url, mmap_mode="r", storage_options=server.options)[MIB // 8 : MIB // 4]
            )

        def joblib_slice(url: str) -> Any:
            return np.array(joblib_load(url)[MIB // 8 : MIB // 4])

        tools = {
            "zoblib": (".pkl", zoblib_dump, zoblib_load, zoblib_slice),
            "joblib + s3fs file": (".joblib", joblib_dump, joblib_load, joblib_slice),
        }
        for tool, (suffix, dump, load, lazy_slice) in tools.items():
            warm_up = server.url(f"warm-up{suffix}")  # imports and connections, not timed
            dump(warm_up)
            load(warm_up)
            times: dict[str, list[float]] = {"dump": [], "load": []}
            for _ in range(repeat):
                url = server.url(f"array{suffix}")
                for operation, function in (("dump", dump), ("load", load)):
                    started = time.perf_counter()
                    function(url)
                    times[operation].append(time.perf_counter() - started)
            seen.clear()
            sliced = lazy_slice(url)
            requests = len(seen)
            np.testing.assert_array_equal(sliced, array[MIB // 8 : MIB // 4])
            for operation, values in times.items():
                rows.append(
                    {
                        "case": f"s3-{operation}",
                        "engine": tool,
                        "median_seconds": statistics.median(values),
                        "seconds": values,
                        "data_nbytes": array.nbytes,
                        "slice_requests": requests,
                    }
                )
    return rows


# -- the harness --------------------------------------------------------------------------------


def run_child(what: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        what,
        "--size-mib",
        str(args.size_mib),
        "--repeat",
        str(args.repeat),
        "--cases",
        *args.cases,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-4000:]}")
    rows: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    by_key = {(row["case"], row["engine"]): row for row in rows}
    cluster_rows = []
    for row in rows:
        if row["case"].startswith("s3-"):
            continue
        reference = by_key.get((row["case"], REFERENCE.get(row["engine"], "")))
        speedup = reference["median_seconds"] / row["median_seconds"] if reference else None
        cluster_rows.append(
            [
                row["case"],
                row["engine"],
                format_seconds(row["median_seconds"]),
                format_ratio(speedup),
                format_bytes(row["driver_peak_growth"]),
                format_bytes(row["cluster_peak_growth"]),
                {True: "yes", False: "no"}.get(row.get("results_writable"), ""),
            ]
        )
    headers = [
        "case",
        "engine",
        "time (median)",
        "speed-up vs joblib's",
        "driver peak growth",
        "workers peak growth",
        "results writable",
    ]
    parts = [markdown_table(headers, cluster_rows, "llrrrrl")]
    ratios = []
    for case, engine_name, other in COMPARISONS:
        mine, theirs = by_key.get((case, engine_name)), by_key.get((case, other))
        if mine and theirs:
            speedup = theirs["median_seconds"] / mine["median_seconds"]
            ratios.append(f"- {case}: {engine_name} is {format_ratio(speedup)} as fast as {other}")
    if ratios:
        parts.append("\n".join(ratios))
    s3_rows = [
        [row["case"], row["engine"], format_seconds(row["median_seconds"]), str(row["slice_requests"])]
        for row in rows
        if row["case"].startswith("s3-")
    ]
    if s3_rows:
        headers = ["operation", "tool", "time (median)", "requests for a 1 MiB slice"]
        parts.append(markdown_table(headers, s3_rows, "llrr"))
    return "\n\n".join(parts)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the big argument (MiB)")
    parser.add_argument("--repeat", type=int, default=3, help="calls per case (median reported)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES), metavar="CASE")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES), metavar="ENGINE")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 dump/load rows")
    parser.add_argument(
        "--save-json", default=None, metavar="PATH", help="also write every row, with the environment, here"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        if args.child == "s3":
            rows = measure_s3(args.size_mib, args.repeat)
        else:
            cases = [
                case for case in args.cases if case == "big-argument" or not args.child.endswith("scatter")
            ]
            rows = measure_engine(args.child, cases, args.size_mib, args.repeat)
        print(json.dumps(rows))
        return
    rows = []
    for name in [*args.engines, *([] if args.no_s3 else ["s3"])]:
        started = time.perf_counter()
        rows += run_child(name, args)
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    environment = describe_environment(PACKAGES)
    arguments = f"--size-mib {args.size_mib} --repeat {args.repeat}"
    print(f"{environment}\n\n{arguments}, {N_TASKS} tasks on 2 workers, {N_TINY} tiny tasks\n")
    print(report(rows))
    if args.save_json:
        document = {"benchmark": "bench_distributed", "environment": environment, "arguments": arguments}
        with open(args.save_json, "w") as file:
            json.dump({**document, "rows": rows}, file, indent=1)
            file.write("\n")


if __name__ == "__main__":
    main()
