"""Parallel's API: results, ordering, backends by name, n_jobs, prefer/require, reuse."""

from __future__ import annotations

import os
import threading
import types

import pytest
from parallel_helpers import sleep_then_return, square, where_am_i

from zoblib.errors import UnknownBackendError
from zoblib.parallel import Parallel, cpu_count, delayed, effective_n_jobs

ALL_BACKENDS = ["loky", "multiprocessing", "threading", "sequential"]


@pytest.mark.parametrize("return_as", ["list", "generator"])
def test_results_come_in_input_order(return_as: str) -> None:
    # Early tasks are the slowest, so they finish last.
    delays = [0.3, 0.2, 0.1, 0.0, 0.0, 0.0]
    output = Parallel(n_jobs=2, return_as=return_as, batch_size=1)(
        delayed(sleep_then_return)(delay, index) for index, delay in enumerate(delays)
    )
    if return_as == "generator":
        assert isinstance(output, types.GeneratorType)
    assert list(output) == list(range(len(delays)))


def test_generator_unordered_yields_results_as_they_finish() -> None:
    delays = [0.6, 0.0, 0.0, 0.0]
    output = Parallel(n_jobs=2, return_as="generator_unordered", batch_size=1)(
        delayed(sleep_then_return)(delay, index) for index, delay in enumerate(delays)
    )
    results = list(output)
    assert sorted(results) == [0, 1, 2, 3]
    assert results[-1] == 0  # the slow first task came last


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_every_backend_runs_tasks_where_it_should(backend: str) -> None:
    results = Parallel(n_jobs=2, backend=backend)(delayed(where_am_i)(i, 0.05) for i in range(4))
    pids = {pid for pid, _ in results}
    threads = {thread for _, thread in results}
    if backend in ("loky", "multiprocessing"):
        assert os.getpid() not in pids
    else:
        assert pids == {os.getpid()}
    if backend == "threading":
        assert threading.current_thread().name not in threads
    if backend == "sequential":
        assert threads == {threading.current_thread().name}


def test_values_are_computed() -> None:
    assert Parallel(n_jobs=2)(delayed(square)(i) for i in range(20)) == [i * i for i in range(20)]


def test_keyword_arguments_and_empty_input() -> None:
    assert Parallel(n_jobs=2)(delayed(sleep_then_return)(seconds=0, value=v) for v in "ab") == [
        "a",
        "b",
    ]
    assert Parallel(n_jobs=2)([]) == []


def test_negative_n_jobs_count_from_the_cpus() -> None:
    cpus = cpu_count()
    assert effective_n_jobs(-1) == cpus
    assert effective_n_jobs(-2) == max(cpus - 1, 1)
    assert effective_n_jobs(-1000) == 1
    assert effective_n_jobs(3) == 3
    assert Parallel(n_jobs=-1)(delayed(square)(i) for i in range(3)) == [0, 1, 4]


def test_n_jobs_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="n_jobs == 0"):
        Parallel(n_jobs=0)


def test_n_jobs_one_runs_in_the_calling_thread() -> None:
    results = Parallel(n_jobs=1, backend="loky")(delayed(where_am_i)(i) for i in range(2))
    assert results == [(os.getpid(), threading.current_thread().name)] * 2


def test_prefer_threads_and_require_sharedmem_use_threads() -> None:
    assert Parallel(n_jobs=2, prefer="threads").backend.name == "threading"
    assert Parallel(n_jobs=2, prefer="processes").backend.name == "loky"
    shared: list[int] = []
    Parallel(n_jobs=2, require="sharedmem")(delayed(shared.append)(i) for i in range(5))
    assert sorted(shared) == [0, 1, 2, 3, 4]


def test_explicit_backend_wins_over_prefer_but_conflicts_with_require() -> None:
    assert Parallel(n_jobs=2, backend="loky", prefer="threads").backend.name == "loky"
    with pytest.raises(ValueError, match="sharedmem"):
        Parallel(n_jobs=2, backend="loky", require="sharedmem")


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(UnknownBackendError, match=r"'loky'.*'threading'") as caught:
        Parallel(backend="no-such-backend")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("return_as", "dict"),
        ("batch_size", 0),
        ("batch_size", "big"),
        ("pre_dispatch", "__import__('os')"),
        ("prefer", "gpus"),
        ("require", "speed"),
        ("mmap_mode", "x"),
        ("max_nbytes", "lots"),
        ("timeout", -1),
    ],
)
def test_invalid_arguments_are_refused_at_construction(argument: str, value: object) -> None:
    with pytest.raises(ValueError, match=argument):
        Parallel(n_jobs=2, **{argument: value})


def test_items_that_are_not_tasks_are_refused() -> None:
    with pytest.raises(TypeError, match="delayed"):
        Parallel(n_jobs=2)([square])


def test_a_running_object_refuses_a_second_call() -> None:
    parallel = Parallel(n_jobs=2, return_as="generator")
    output = parallel(delayed(square)(i) for i in range(10))
    with pytest.raises(RuntimeError, match="already running"):
        parallel(delayed(square)(i) for i in range(3))
    assert list(output) == [i * i for i in range(10)]
    assert list(parallel(delayed(square)(i) for i in range(3))) == [0, 1, 4]


@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_context_manager_keeps_the_same_workers(backend: str) -> None:
    def worker_pids(parallel: Parallel) -> set[int]:
        return {pid for pid, _ in parallel(delayed(where_am_i)(i, 0.05) for i in range(6))}

    with Parallel(n_jobs=2, backend=backend, batch_size=1) as parallel:
        first = worker_pids(parallel)
        second = worker_pids(parallel)
    assert second <= first
    if backend == "multiprocessing":
        # Without the block, each call has its own pool: the check above can fail.
        one_call = worker_pids(Parallel(n_jobs=2, backend=backend, batch_size=1))
        assert not one_call & first


def test_a_dropped_generator_ends_its_call() -> None:
    parallel = Parallel(n_jobs=2, return_as="generator", batch_size=1)
    output = parallel(delayed(sleep_then_return)(0.05, i) for i in range(100))
    assert next(output) == 0
    output.close()
    assert list(parallel(delayed(square)(i) for i in range(3))) == [0, 1, 4]
