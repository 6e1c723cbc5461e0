"""register_parallel_backend and the backend contract, with small backends of our own."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest
from parallel_helpers import RecordingBackend, describe_array, fail_on, square

from zoblib.parallel import (
    BACKENDS,
    Parallel,
    ParallelBackendBase,
    delayed,
    parallel_config,
    register_parallel_backend,
)
from zoblib.parallel.backends.loky import LokyBackend
from zoblib.parallel.backends.multiprocessing import MultiprocessingBackend
from zoblib.parallel.backends.sequential import SequentialBackend
from zoblib.parallel.backends.threading import ThreadingBackend


def test_a_registered_backend_is_used_by_name_with_its_parameters() -> None:
    made: list[RecordingBackend] = []

    def factory(**params: Any) -> RecordingBackend:
        made.append(RecordingBackend(**params))
        return made[-1]

    register_parallel_backend("recording", factory)
    assert "recording" in BACKENDS
    with parallel_config(backend="recording", n_jobs=2, label="hello") as config:
        results = Parallel()(delayed(square)(i) for i in range(10))
    assert results == [i * i for i in range(10)]
    # One backend describes the block (joblib's config["backend"]), unused; the call makes its own.
    block, backend = made
    assert config["backend"] is block
    assert block.label == backend.label == "hello"
    assert block.events == []
    assert backend.events == ["start 2", "stop"]
    assert all(isinstance(argument, bytes) for argument in backend.arguments)


def test_a_failing_call_aborts_the_backend() -> None:
    backend = RecordingBackend()
    with pytest.raises(ValueError):
        Parallel(n_jobs=2, backend=backend, batch_size=1)(delayed(fail_on)(i, 0) for i in range(50))
    assert backend.events[-1] == "abort"


def test_arrays_by_reference_work_through_any_backend_with_a_shared_folder() -> None:
    big = np.arange(300_000.0)
    (seen,) = Parallel(n_jobs=2, backend=RecordingBackend())([delayed(describe_array)(big)])
    assert seen["type"] is np.memmap
    assert seen["sum"] == big.sum()


def test_make_default_changes_the_default_backend() -> None:
    register_parallel_backend("threads-by-default", ThreadingBackend, make_default=True)
    try:
        assert Parallel(n_jobs=2).backend.name == "threading"
    finally:
        register_parallel_backend("loky", LokyBackend, make_default=True)
    assert Parallel(n_jobs=2).backend.name == "loky"


def test_the_registry_view_is_read_only() -> None:
    with pytest.raises(TypeError):
        BACKENDS["mine"] = ThreadingBackend  # type: ignore[index]


def test_bad_registrations_are_refused() -> None:
    with pytest.raises(TypeError):
        register_parallel_backend("", ThreadingBackend)
    with pytest.raises(TypeError):
        register_parallel_backend("thing", "not callable")  # type: ignore[arg-type]
    register_parallel_backend("not-a-backend", lambda: object())
    with pytest.raises(TypeError, match="not a ParallelBackendBase"):
        Parallel(backend="not-a-backend")


def test_a_backend_missing_methods_fails_at_construction() -> None:
    class Incomplete(ParallelBackendBase):
        def start(self, n_jobs: int, worker_env: Mapping[str, str]) -> None:
            pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


# -- a conformance suite every backend passes ------------------------------------------------

BACKEND_CLASSES = [
    LokyBackend,
    MultiprocessingBackend,
    ThreadingBackend,
    SequentialBackend,
    RecordingBackend,
]


@pytest.fixture(params=BACKEND_CLASSES, ids=lambda cls: cls.__name__)
def backend(request: pytest.FixtureRequest) -> ParallelBackendBase:
    instance: ParallelBackendBase = request.param()
    return instance


class TestBackendContract:
    def test_submit_returns_a_future_of_the_result(self, backend: ParallelBackendBase) -> None:
        backend.start(2, {})
        try:
            future = backend.submit(square, 7)
            assert isinstance(future, Future)
            assert future.result(timeout=30) == 49
        finally:
            backend.stop()

    def test_start_twice_then_abort_then_start_again(self, backend: ParallelBackendBase) -> None:
        backend.start(2, {})
        backend.start(2, {})
        backend.abort()
        backend.start(2, {})
        try:
            assert backend.submit(square, 3).result(timeout=30) == 9
        finally:
            backend.stop()

    def test_effective_n_jobs(self, backend: ParallelBackendBase) -> None:
        assert backend.effective_n_jobs(-1) >= 1
        assert backend.effective_n_jobs(1) == 1
        with pytest.raises(ValueError):
            backend.effective_n_jobs(0)

    def test_flags_are_booleans(self, backend: ParallelBackendBase) -> None:
        for flag in (
            "supports_sharedmem",
            "supports_shared_folder",
            "supports_abort_running",
            "supports_worker_env",
        ):
            assert isinstance(getattr(backend, flag), bool)
