"""joblib's contract for a ``Parallel`` instance called while its generator runs, and for a
backend with no worker: the same errors, with joblib's messages, whatever the backend."""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest
from parallel_helpers import sleep_then_return, square

from zoblib.parallel import Parallel, delayed, parallel_backend, parallel_config
from zoblib.parallel.backends.threading import ThreadingBackend

ALREADY_RUNNING = "This Parallel instance is already running"
GENERATOR_HINT = "clean all references to the output generator"

# n_jobs=1 and 'sequential' run the tasks in this thread; the others run a pool.
CASES = [
    ("loky", 2),
    ("loky", 1),
    ("multiprocessing", 2),
    ("threading", 2),
    ("threading", 1),
    ("sequential", 2),
]


@pytest.mark.parametrize("return_as", ["generator", "generator_unordered"])
@pytest.mark.parametrize(("backend", "n_jobs"), CASES)
def test_a_second_call_while_a_generator_runs_raises_joblibs_error(
    backend: str, n_jobs: int, return_as: Any
) -> None:
    parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as=return_as)
    first = parallel(delayed(sleep_then_return)(0.01, i) for i in range(6))
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=ALREADY_RUNNING) as caught:
        parallel(delayed(square)(i) for i in range(3))
    assert time.monotonic() - started < 2  # refused at once, not after the first call
    assert GENERATOR_HINT in str(caught.value)
    assert sorted(first) == list(range(6))  # the first call was not disturbed
    # Once its generator is exhausted, the instance takes calls again.
    assert sorted(parallel(delayed(square)(i) for i in range(3))) == [0, 1, 4]


@pytest.mark.parametrize(("backend", "n_jobs"), CASES)
def test_inside_a_with_block_too(backend: str, n_jobs: int) -> None:
    with Parallel(n_jobs=n_jobs, backend=backend, return_as="generator") as parallel:
        first = parallel(delayed(sleep_then_return)(0.01, i) for i in range(4))
        with pytest.raises(RuntimeError, match=ALREADY_RUNNING):
            parallel(delayed(square)(i) for i in range(3))
        assert list(first) == [0, 1, 2, 3]
        assert list(parallel(delayed(square)(i) for i in range(3))) == [0, 1, 4]


@pytest.mark.parametrize(("backend", "n_jobs"), CASES)
def test_a_dropped_generator_frees_the_instance(backend: str, n_jobs: int) -> None:
    parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")
    first = parallel(delayed(square)(i) for i in range(4))  # never iterated
    del first
    gc.collect()
    assert list(parallel(delayed(square)(i) for i in range(3))) == [0, 1, 4]


@pytest.mark.parametrize(("backend", "n_jobs"), [("loky", 2), ("sequential", 1)])
def test_the_end_of_an_old_generator_does_not_free_a_later_call(backend: str, n_jobs: int) -> None:
    parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")
    old = parallel(delayed(square)(i) for i in range(2))
    assert list(old) == [0, 1]
    running = parallel(delayed(sleep_then_return)(0.01, i) for i in range(4))
    del old  # its clean-up runs now, while the second call is under way
    gc.collect()
    with pytest.raises(RuntimeError, match=ALREADY_RUNNING):
        parallel(delayed(square)(i) for i in range(3))
    assert list(running) == [0, 1, 2, 3]


def test_a_list_call_made_while_running_has_no_generator_hint() -> None:
    # A task that calls its own Parallel instance (threads share it) while the call runs.
    parallel = Parallel(n_jobs=2, backend="threading")

    def call_again(_: int) -> str:
        try:
            parallel(delayed(square)(i) for i in range(2))
        except RuntimeError as error:
            return str(error)
        return "no error"

    messages = parallel(delayed(call_again)(i) for i in range(2))
    assert messages == ["This Parallel instance is already running !"] * 2


def test_a_failed_call_frees_the_instance() -> None:
    parallel = Parallel(n_jobs=1, return_as="generator")
    failing = parallel(delayed(int)(text) for text in ["1", "x"])
    with pytest.raises(ValueError, match="invalid literal"):
        list(failing)
    assert list(parallel(delayed(square)(i) for i in range(3))) == [0, 1, 4]


class ZeroWorkerBackend(ThreadingBackend):
    """A backend that reports no worker (joblib's test_zero_worker_backend)."""

    def effective_n_jobs(self, n_jobs: int) -> int:
        return 0


@pytest.mark.parametrize("context", [parallel_config, parallel_backend])
def test_a_backend_without_workers_raises_joblibs_runtime_error(context: Any) -> None:
    with context(ZeroWorkerBackend()):
        parallel = Parallel(n_jobs=2)
        with pytest.raises(RuntimeError, match="ZeroWorkerBackend has no active worker"):
            parallel(delayed(id)(i) for i in range(2))
        # The refused call does not leave the instance "running".
        with pytest.raises(RuntimeError, match="has no active worker"):
            parallel(delayed(id)(i) for i in range(2))
        with pytest.raises(RuntimeError, match="ZeroWorkerBackend has no active worker"), Parallel(n_jobs=2):
            pass
