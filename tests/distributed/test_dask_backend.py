"""``backend="dask"`` on a real ``distributed.LocalCluster`` of two worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason='dask.distributed is not installed (pip install "dask[distributed]")'
)
import dask  # noqa: E402  (after the skip: installed with distributed)

from zoblib import Memory  # noqa: E402
from zoblib.errors import ParallelTimeoutError, UnknownBackendError, WorkerDiedError  # noqa: E402
from zoblib.parallel import (  # noqa: E402
    Parallel,
    delayed,
    effective_n_jobs,
    parallel_backend,
    parallel_config,
)
from zoblib.parallel.backends.dask import DaskBackend, DaskClientError  # noqa: E402

pytestmark = pytest.mark.timeout(60)

# No dashboard; the scheduler's other HTTP routes on a free port, not on 8787 (maybe taken).
NO_DASHBOARD: dict[str, Any] = {"dashboard_address": None, "scheduler_kwargs": {"dashboard_address": ":0"}}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    # A dead worker fails its task at once (dask's default retries it on 3 more workers).
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, **NO_DASHBOARD
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


def worker_pids(client: Any) -> set[int]:
    return set(client.run(os.getpid).values())


# -- what the tasks run (module level: the workers import them) ------------------------------


class TaskFailed(ValueError):
    pass


def where() -> tuple[int, str]:
    return os.getpid(), distributed.get_worker().address


def fail_on(value: int, bad: int) -> int:
    if value == bad:
        raise TaskFailed(f"task {value} refused")
    return value


def describe(array: np.ndarray[Any, Any]) -> tuple[bool, str, float]:
    return isinstance(array, np.memmap), str(getattr(array, "filename", "")), float(array.sum())


def inner_sum(n: int) -> tuple[int, list[str]]:
    # A Parallel call inside a task: it must run on the cluster, whose two threads are both
    # busy with outer tasks, without deadlock.
    places = Parallel()(delayed(where)() for _ in range(n))
    return n, sorted({address for _, address in places})


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def slow_square(x: int, delay: float) -> int:
    time.sleep(delay)
    return x * x


class CountedModel:
    """A stand-in for a big model: counts, in the process that pickles it, how often it is."""

    pickled = 0

    def __init__(self, weights: bytes) -> None:
        self.weights = weights

    def __reduce__(self) -> tuple[Any, ...]:
        type(self).pickled += 1
        return CountedModel, (self.weights,)


def model_size(model: CountedModel, lookup: dict[str, Any]) -> tuple[int, int, bool]:
    # The worker's copy of a scattered object is one object, whichever batch names it.
    return os.getpid(), len(model.weights), lookup["model"] is model


def cached_square(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    time.sleep(0.05)  # so that the concurrent calls overlap
    return array**2


# -- choosing the backend and the client --------------------------------------------------------


def test_runs_on_the_client_in_scope(client: Any) -> None:
    with parallel_config(backend="dask"):
        places = Parallel()(delayed(where)() for _ in range(8))
    assert {pid for pid, _ in places} <= worker_pids(client)
    assert os.getpid() not in {pid for pid, _ in places}


def test_parallel_backend_and_explicit_client(client: Any) -> None:
    with parallel_backend("dask", client=client) as (backend, n_jobs):
        assert isinstance(backend, DaskBackend) and backend.client is client
        assert n_jobs == -1
        assert Parallel()(delayed(abs)(-i) for i in range(5)) == [0, 1, 2, 3, 4]
    assert Parallel(backend=DaskBackend(client))(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]


def test_n_jobs_counts_the_cluster_threads(client: Any) -> None:
    with parallel_config(backend="dask"):
        assert effective_n_jobs(-1) == 2
        assert effective_n_jobs(-2) == 1
        assert effective_n_jobs(5) == 5


def test_no_client_says_what_to_do() -> None:
    code = "from zoblib.parallel import parallel_config\nparallel_config('dask').__enter__()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "DaskClientError" in done.stderr
    assert "no Client in scope" in done.stderr and "Client()" in done.stderr


def test_missing_distributed_names_the_package() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["distributed"] = None  # as if it were not installed
        from zoblib.parallel import parallel_config
        from zoblib.errors import UnknownBackendError
        try:
            parallel_config("dask").__enter__()
        except UnknownBackendError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert 'pip install "dask[distributed]"' in done.stdout
    assert issubclass(UnknownBackendError, ValueError)


def test_scatter_and_submit_keywords(client: Any) -> None:
    with pytest.raises(TypeError, match="scatter must be a list/tuple"):
        DaskBackend(client, scatter=np.arange(3))
    first = sorted(client.scheduler_info()["workers"])[0]
    # workers= reaches Client.submit: every batch runs on that one worker.
    with parallel_config(backend="dask", scatter=[np.arange(3)], workers=[first], priority=10):
        places = Parallel(batch_size=1)(delayed(where)() for _ in range(6))
    assert {address for _, address in places} == {first}


@pytest.mark.parametrize("scatter", [True, False], ids=["scattered", "with-each-batch"])
def test_scatter_sends_objects_once(client: Any, scatter: bool) -> None:
    model = CountedModel(b"w" * 2_000_000)
    lookup = {"model": model}  # the same object reached twice from one task
    CountedModel.pickled = 0
    config = {"scatter": [model]} if scatter else {}
    with parallel_config(backend="dask", **config):
        first = Parallel(batch_size=1)(delayed(model_size)(model, lookup) for _ in range(8))
        second = Parallel(batch_size=1)(delayed(model_size)(model, lookup) for _ in range(4))
    assert {(size, same) for _, size, same in first + second} == {(2_000_000, True)}
    if scatter:
        # Pickled by dask's scatter (once, or once per worker), never with the 12 batches.
        assert 1 <= CountedModel.pickled <= 2
    else:
        assert CountedModel.pickled == 12


def test_cluster_without_workers_times_out() -> None:
    with (
        distributed.LocalCluster(n_workers=0, processes=False, **NO_DASHBOARD) as empty,
        distributed.Client(empty, set_as_default=False) as empty_client,
        parallel_config(backend="dask", client=empty_client, wait_for_workers_timeout=0.5),
        pytest.raises(DaskClientError, match=r"has no worker after 0.5 s"),
    ):
        Parallel()(delayed(abs)(i) for i in range(2))


# -- arrays by reference ----------------------------------------------------------------------


def test_big_arrays_travel_as_memmaps_and_are_removed(client: Any, tmp_path: Path) -> None:
    big = np.arange(300_000, dtype=np.float64)
    with parallel_config(backend="dask", temp_folder=str(tmp_path), max_nbytes="1M"):
        seen = Parallel()(delayed(describe)(big) for _ in range(4))
        small = Parallel()(delayed(describe)(big[:10]) for _ in range(2))
    assert all(is_memmap and name.startswith(str(tmp_path)) for is_memmap, name, _ in seen)
    assert {total for _, _, total in seen} == {float(big.sum())}
    assert not any(is_memmap for is_memmap, _, _ in small)
    assert list(tmp_path.iterdir()) == []  # the call's folder went away with it


def test_big_results_come_back(client: Any, tmp_path: Path) -> None:
    with parallel_config(backend="dask", temp_folder=str(tmp_path)):
        results = Parallel()(delayed(np.full)(200_000, i, dtype=np.float64) for i in range(4))
    assert [float(result[0]) for result in results] == [0.0, 1.0, 2.0, 3.0]
    assert all(result.flags.writeable for result in results)
    assert list(tmp_path.iterdir()) == []


# -- parity with loky -------------------------------------------------------------------------


@pytest.mark.parametrize("return_as", ["generator", "generator_unordered"])
def test_generators(client: Any, return_as: str) -> None:
    with parallel_config(backend="dask"):
        results = Parallel(return_as=return_as)(delayed(slow_square)(i, 0.01) for i in range(10))
        assert not isinstance(results, list)
        got = list(results)
    expected = [i * i for i in range(10)]
    assert got == expected if return_as == "generator" else sorted(got) == expected


def test_task_exception_keeps_its_type(client: Any) -> None:
    with parallel_config(backend="dask"), pytest.raises(TaskFailed, match="task 3 refused") as caught:
        Parallel()(delayed(fail_on)(i, 3) for i in range(6))
    assert any("worker process" in note for note in getattr(caught.value, "__notes__", []))


def test_timeout(client: Any) -> None:
    started = time.monotonic()
    with parallel_config(backend="dask"), pytest.raises(ParallelTimeoutError):
        Parallel(timeout=0.5)(delayed(slow_square)(i, 2.0) for i in range(2))
    assert time.monotonic() - started < 2.0
    client.wait_for_workers(2)
    time.sleep(2.0)  # let the running tasks (dask cannot stop them) end before the next test


def test_verbose_reports_progress(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with parallel_config(backend="dask"):
        Parallel(verbose=10)(delayed(abs)(i) for i in range(4))
    err = capsys.readouterr().err
    assert "Using backend dask with 2 concurrent workers" in err
    assert "Done" in err


def test_nested_calls_run_on_the_cluster(client: Any) -> None:
    addresses = set(client.scheduler_info()["workers"])
    with parallel_config(backend="dask"):
        # Without secede/rejoin this deadlocks: the timeout turns that into a failure.
        results = Parallel(batch_size=1, timeout=30)(delayed(inner_sum)(n) for n in (3, 4, 5, 6))
    assert [n for n, _ in results] == [3, 4, 5, 6]
    assert all(set(places) <= addresses for _, places in results)


def test_memory_cached_function_in_concurrent_tasks(client: Any, tmp_path: Path) -> None:
    memory = Memory(tmp_path / "cache", verbose=0)
    cached = memory.cache(cached_square)
    argument = np.arange(1000, dtype=np.float64)
    with parallel_config(backend="dask"):
        results = Parallel(batch_size=1)(delayed(cached)(argument) for _ in range(8))
    for result in results:
        np.testing.assert_array_equal(result, argument**2)
    assert cached.check_call_in_cache(argument)
    np.testing.assert_array_equal(cached(argument), argument**2)


def test_killed_worker_is_worker_died_error(client: Any) -> None:
    with parallel_config(backend="dask"), pytest.raises(WorkerDiedError, match="'dask' backend died"):
        Parallel()(delayed(kill_self)() for _ in range(2))
    client.wait_for_workers(2, timeout=30)  # the nannies restart them
    with parallel_config(backend="dask"):
        assert Parallel()(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]
