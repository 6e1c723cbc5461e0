"""parallel_config / parallel_backend: nesting, precedence, and what tasks in workers inherit."""

from __future__ import annotations

import threading

import pytest
from parallel_helpers import environment, nested_view, run_inner_parallel, square

from zoblib.parallel import (
    Parallel,
    cpu_count,
    delayed,
    effective_n_jobs,
    parallel_backend,
    parallel_config,
)
from zoblib.parallel.backends.threading import ThreadingBackend
from zoblib.parallel.config import get_active_config


def test_config_sets_the_defaults_of_parallel() -> None:
    with parallel_config(backend="threading", n_jobs=3, verbose=5, max_nbytes="2M"):
        parallel = Parallel()
        assert parallel.backend.name == "threading"
        assert parallel.n_jobs == 3
        assert parallel.verbose == 5
        assert parallel.max_nbytes == 2 * 1024**2
    parallel = Parallel()
    assert (parallel.backend.name, parallel.n_jobs, parallel.verbose) == ("loky", 1, 0)


def test_nested_blocks_override_what_they_set_and_inherit_the_rest() -> None:
    with parallel_config(backend="threading", n_jobs=2):
        with parallel_config(n_jobs=3):
            assert (Parallel().backend.name, Parallel().n_jobs) == ("threading", 3)
            with parallel_config(backend="sequential"):
                assert (Parallel().backend.name, Parallel().n_jobs) == ("sequential", 3)
        assert (Parallel().backend.name, Parallel().n_jobs) == ("threading", 2)
    assert get_active_config() == {}


def test_arguments_given_to_parallel_win_over_the_block() -> None:
    with parallel_config(backend="threading", n_jobs=3, mmap_mode="c"):
        parallel = Parallel(backend="loky", n_jobs=2, mmap_mode=None)
        assert (parallel.backend.name, parallel.n_jobs, parallel.mmap_mode) == ("loky", 2, None)
        # n_jobs=None, as libraries pass on behalf of their users, defers to the block.
        assert Parallel(n_jobs=None).n_jobs == 3


def test_prefer_is_a_hint_that_a_configured_backend_overrides() -> None:
    with parallel_config(backend="loky"):
        assert Parallel(n_jobs=2, prefer="threads").backend.name == "loky"
        # require is a constraint: it falls back to threads.
        assert Parallel(n_jobs=2, require="sharedmem").backend.name == "threading"


def test_effective_n_jobs_follows_the_block() -> None:
    with parallel_config(backend="sequential"):
        assert effective_n_jobs(-1) == 1
    with parallel_config(backend="threading", n_jobs=2):
        assert effective_n_jobs(None) == 2


def test_parallel_backend_is_the_older_form() -> None:
    with parallel_backend("threading") as (backend, n_jobs):
        assert isinstance(backend, ThreadingBackend)
        assert n_jobs == -1
        assert Parallel().backend.name == "threading"
        assert Parallel().n_jobs == -1
        assert Parallel()(delayed(square)(i) for i in range(4)) == [0, 1, 4, 9]


def test_a_backend_object_can_be_configured() -> None:
    backend = ThreadingBackend()
    with parallel_config(backend=backend, n_jobs=2):
        assert Parallel().backend is backend


def test_a_block_does_not_leak_into_other_threads() -> None:
    seen: list[str] = []
    with parallel_config(backend="threading"):
        thread = threading.Thread(target=lambda: seen.append(Parallel().backend.name))
        thread.start()
        thread.join()
    assert seen == ["loky"]


def test_invalid_settings_are_refused_when_the_block_is_made() -> None:
    with pytest.raises(ValueError, match="prefer"):
        parallel_config(prefer="gpu")
    with pytest.raises(ValueError, match=r"Invalid backend: 'nope', expected one of"):
        parallel_config(backend="nope")


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_tasks_in_workers_get_threads_and_a_fair_share_of_cpus(backend: str) -> None:
    with parallel_config(max_nbytes="3M"):
        views = Parallel(n_jobs=2, backend=backend)(delayed(nested_view)(i) for i in range(2))
    for view in views:
        assert view["backend"] == "threading"
        assert view["config_backend"] == "threading"
        assert view["n_jobs_minus_one"] == max(1, cpu_count() // 2)
        assert view["max_nbytes"] == 3 * 1024**2  # the caller's block reaches nested calls
    # Outside the workers, the whole machine again.
    assert effective_n_jobs(-1) == cpu_count()


def test_nested_parallel_calls_work() -> None:
    results = Parallel(n_jobs=2)(delayed(run_inner_parallel)(x) for x in range(3))
    assert results == [[(x + i) ** 2 for i in range(3)] for x in range(3)]


def test_blas_thread_limits_are_set_in_process_workers() -> None:
    expected = str(max(1, cpu_count() // 2))
    for env in Parallel(n_jobs=2)(delayed(environment)(i) for i in range(2)):
        assert env == dict.fromkeys(env, expected)


def test_inner_max_num_threads_sets_the_limit() -> None:
    # joblib takes it with a backend that sets its workers' environment before they start.
    with parallel_config("loky", inner_max_num_threads=3):
        envs = Parallel(n_jobs=2)(delayed(environment)(i) for i in range(2))
    for env in envs:
        assert env["OMP_NUM_THREADS"] == "3"
