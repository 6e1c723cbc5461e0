"""Behaviours joblib 1.6.0 has and users rely on when they switch with ``import zoblib as joblib``.

Each test names what joblib does; the calls run real worker processes.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import pickle
import threading
from pathlib import Path

import pytest
from parallel_helpers import (
    broken_backend_factory,
    initialization_seen,
    inner_default_backends,
    record_initialization,
    run_nested,
    sleep_then_return,
    square,
    thread_limits,
)

from zoblib.errors import BackendOptionError, ParallelTimeoutError, ZoblibWarning
from zoblib.parallel import (
    Parallel,
    cpu_count,
    delayed,
    parallel_backend,
    parallel_config,
    register_parallel_backend,
)
from zoblib.parallel.backends.loky import shutdown_workers
from zoblib.parallel.backends.threading import ThreadingBackend
from zoblib.parallel.config import get_active_config

PROCESS_BACKENDS = ["loky", "multiprocessing"]


# -- 1. backend options: initializer and initargs ---------------------------------------------


def _check_initialized_once(results: list[tuple[int, list[str]]], folder: Path, marker: str) -> None:
    pids = {pid for pid, _ in results}
    assert os.getpid() not in pids
    assert all(seen == [marker] for _, seen in results), results
    runs = collections.Counter(name.split("-")[0] for name in os.listdir(folder))
    # Every worker that ran a task ran the initializer exactly once.
    assert {int(pid) for pid in runs} >= pids
    assert set(runs.values()) == {1}


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_parallel_passes_initializer_to_the_workers(backend: str, tmp_path: Path) -> None:
    marker = f"parallel-{backend}-{tmp_path.name}"
    results = Parallel(
        n_jobs=2, backend=backend, initializer=record_initialization, initargs=(str(tmp_path), marker)
    )(delayed(initialization_seen)(i) for i in range(20))
    _check_initialized_once(results, tmp_path, marker)


@pytest.mark.parametrize("context", [parallel_config, parallel_backend])
@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_config_passes_initializer_to_the_workers(backend: str, context: type, tmp_path: Path) -> None:
    marker = f"config-{backend}-{context.__name__}-{tmp_path.name}"
    with context(
        backend=backend, n_jobs=2, initializer=record_initialization, initargs=(str(tmp_path), marker)
    ):
        results = Parallel()(delayed(initialization_seen)(i) for i in range(20))
    _check_initialized_once(results, tmp_path, marker)


def test_threads_accept_and_ignore_process_options_as_joblib_does() -> None:
    with pytest.warns(ZoblibWarning, match="'threading' backend ignores the option.*initializer"):
        results = Parallel(n_jobs=2, backend="threading", initializer=print)(
            delayed(square)(i) for i in range(4)
        )
    assert results == [0, 1, 4, 9]


def test_unknown_options_fail_for_multiprocessing_and_are_ignored_by_loky() -> None:
    with pytest.raises(TypeError, match="bogus"):
        Parallel(n_jobs=2, backend="multiprocessing", bogus=1)
    ignored = pytest.warns(ZoblibWarning, match="'loky' backend ignores the option.*bogus")
    with ignored, parallel_config(backend="loky", bogus=1):
        assert Parallel(n_jobs=2)(delayed(square)(i) for i in range(3)) == [0, 1, 4]
    with pytest.raises(ValueError, match="idle_worker_timeout"), parallel_config(backend="loky", timeout=3):
        Parallel(n_jobs=2)


# -- 2. nested pools of different backends never hang ------------------------------------------


@pytest.mark.parametrize(
    ("outer", "inner", "message"),
    [
        ("multiprocessing", "loky", "Loky-backed parallel loops cannot be called in a multiprocessing"),
        ("loky", "multiprocessing", "Multiprocessing-backed parallel loops cannot be nested, below loky"),
        ("multiprocessing", "multiprocessing", "Multiprocessing-backed parallel loops cannot be nested"),
        ("threading", "loky", "Loky-backed parallel loops cannot be nested below threads"),
        ("threading", "multiprocessing", "cannot be nested below threads"),
    ],
)
def test_a_process_pool_that_cannot_nest_runs_sequentially_with_joblibs_warning(
    outer: str, inner: str, message: str
) -> None:
    # The outer timeout turns a hang (what multiprocessing-outside-loky-inside did) into an
    # error that kills the workers, instead of a test that never ends.
    reports = Parallel(n_jobs=2, backend=outer, timeout=120)(delayed(run_nested)(inner) for _ in range(2))
    for report in reports:
        assert report["inner_pids"] == {report["pid"]}  # the inner loop ran in the task's process
        assert any(message in text for text in report["warnings"]), report["warnings"]


def test_loky_inside_loky_still_uses_processes() -> None:
    reports = Parallel(n_jobs=2, backend="loky", timeout=120)(delayed(run_nested)("loky") for _ in range(2))
    for report in reports:
        assert report["warnings"] == []
        assert report["pid"] not in report["inner_pids"]


def test_nested_default_backend_is_threads_then_sequential() -> None:
    results = Parallel(n_jobs=2, timeout=120)(delayed(inner_default_backends)(i) for i in range(2))
    assert results == [["threading", "sequential", "sequential"]] * 2


# -- 3. timeouts are multiprocessing.TimeoutError, as joblib raises ----------------------------


@pytest.mark.parametrize("backend", ["loky", "multiprocessing", "threading"])
def test_timeout_is_a_multiprocessing_timeout_error(backend: str) -> None:
    with pytest.raises(multiprocessing.TimeoutError) as caught:
        Parallel(n_jobs=2, backend=backend, timeout=0.2)(delayed(sleep_then_return)(5, i) for i in range(4))
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, ParallelTimeoutError)


# -- 4. thread limits in workers ---------------------------------------------------------------


@pytest.mark.parametrize("context", [parallel_config, parallel_backend])
def test_inner_max_num_threads_wins_over_the_users_variables(
    context: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutdown_workers()  # workers started before the variable changed keep the old environment
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert {
        env["OMP_NUM_THREADS"] for env in Parallel(n_jobs=2)(delayed(thread_limits)(i) for i in range(2))
    } == {"4"}
    with context("loky", inner_max_num_threads=1):
        envs = Parallel(n_jobs=2)(delayed(thread_limits)(i) for i in range(2))
    for env in envs:
        assert {name: value for name, value in env.items() if name != "ENABLE_IPC"} == dict.fromkeys(
            [name for name in env if name != "ENABLE_IPC"], "1"
        )
    shutdown_workers()


def test_default_thread_limit_is_cpus_divided_by_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMBA_NUM_THREADS",
        "ENABLE_IPC",
    ):
        monkeypatch.delenv(name, raising=False)
    shutdown_workers()
    expected = str(max(cpu_count() // 2, 1))
    for env in Parallel(n_jobs=2, backend="loky")(delayed(thread_limits)(i) for i in range(2)):
        assert env == {**dict.fromkeys(env, expected), "ENABLE_IPC": "1"}
    shutdown_workers()


@pytest.mark.parametrize("context", [parallel_config, parallel_backend])
@pytest.mark.parametrize("backend", ["multiprocessing", "threading", "sequential", ThreadingBackend()])
def test_inner_max_num_threads_is_refused_where_it_cannot_apply(context: type, backend: object) -> None:
    with pytest.raises(AssertionError, match=r"does not acc.*inner_max_num_threads"):
        context(backend, inner_max_num_threads=1)
    with pytest.raises(BackendOptionError):
        context(backend, inner_max_num_threads=1)


def test_options_without_a_backend_are_refused() -> None:
    with pytest.raises(ValueError, match="only supported when backend is not None"):
        parallel_config(inner_max_num_threads=1)
    with pytest.raises(ValueError, match="only supported when backend is not None"):
        parallel_config(initializer=print)
    with pytest.raises(ValueError, match="only supported when backend is a string"):
        parallel_config(backend=ThreadingBackend(), initializer=print)


# -- 5. a block whose backend fails leaves nothing behind --------------------------------------


def test_a_backend_failing_on_enter_leaves_no_settings_active() -> None:
    register_parallel_backend("zoblib-test-broken", broken_backend_factory)
    with (
        pytest.raises(RuntimeError, match="cannot be made"),
        parallel_backend("zoblib-test-broken", n_jobs=2),
    ):
        pass
    assert get_active_config() == {}
    assert Parallel(n_jobs=2)(delayed(square)(i) for i in range(3)) == [0, 1, 4]
    with pytest.raises(RuntimeError, match="cannot be made"), parallel_config("zoblib-test-broken"):
        Parallel()
    assert get_active_config() == {}
    assert Parallel().backend.name == "loky"


# -- 6. arguments joblib accepts or refuses ------------------------------------------------------


@pytest.mark.parametrize("n_jobs", ["2", 2.3, 2.9, True])
def test_n_jobs_is_converted_with_int(n_jobs: object) -> None:
    parallel = Parallel(n_jobs=n_jobs, backend="threading")  # type: ignore[arg-type]
    assert parallel.n_jobs == int(n_jobs)  # type: ignore[call-overload]
    assert parallel(delayed(square)(i) for i in range(4)) == [0, 1, 4, 9]


@pytest.mark.parametrize(
    ("n_jobs", "message"),
    [
        ("2.3", "n_jobs could not be converted to int"),
        ("all", "n_jobs could not be converted to int"),
        (0.5, "n_jobs == 0 in Parallel has no meaning"),
    ],
)
def test_n_jobs_int_cannot_read_is_refused(n_jobs: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Parallel(n_jobs=n_jobs)  # type: ignore[arg-type]


def test_a_multiprocessing_context_is_a_backend() -> None:
    parallel = Parallel(n_jobs=2, backend=multiprocessing.get_context("spawn"))
    assert parallel.backend.name == "multiprocessing"
    assert parallel.backend.start_method == "spawn"  # type: ignore[attr-defined]
    assert parallel(delayed(square)(i) for i in range(4)) == [0, 1, 4, 9]


def test_processes_and_sharedmem_together_are_refused() -> None:
    with pytest.raises(ValueError, match="inconsistent settings"):
        Parallel(n_jobs=2, prefer="processes", require="sharedmem")
    # joblib takes the block, and refuses at Parallel().
    inconsistent = parallel_config(prefer="processes", require="sharedmem")
    with inconsistent, pytest.raises(ValueError, match="inconsistent settings"):
        Parallel(n_jobs=2)


@pytest.mark.parametrize("how", [{"n_jobs": 1}, {"n_jobs": 2, "backend": "sequential"}])
def test_timeout_without_workers_warns(how: dict[str, object]) -> None:
    with pytest.warns(UserWarning, match="does not support timeout"):
        assert Parallel(timeout=1, **how)(delayed(square)(i) for i in range(3)) == [0, 1, 4]  # type: ignore[arg-type]


class _Unpicklable:
    def __reduce__(self) -> tuple[object, ...]:
        raise RuntimeError("123")


@pytest.mark.parametrize("argument", [_Unpicklable(), threading.Lock()])
@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_an_unpicklable_task_raises_pickling_error(backend: str, argument: object) -> None:
    with pytest.raises(pickle.PicklingError, match="the task to send") as caught:
        Parallel(n_jobs=2, backend=backend)(delayed(id)(argument) for _ in range(3))
    assert caught.value.__cause__ is not None
