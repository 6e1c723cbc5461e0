"""joblib 1.6.0's public contract of ``Parallel`` that its own tests check, restated for zoblib.

Messages joblib's users match, ``nesting_level``, what ``parallel_config`` gives, how far the
input is read ahead, and two generator calls alive at once. The calls run real workers.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from parallel_helpers import append_then_return, nesting_levels_seen, sleep_then_return, square

from zoblib.errors import UnknownBackendError
from zoblib.parallel import Parallel, delayed, parallel_backend, parallel_config, registry
from zoblib.parallel.backends.threading import ThreadingBackend
from zoblib.parallel.config import get_active_config
from zoblib.parallel.registry import BACKENDS

# -- messages --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "allowed"),
    [
        ("prefer", "backend hint", "(None, 'processes', 'threads')"),
        ("require", "backend constraint", "(None, 'sharedmem')"),
    ],
)
def test_invalid_hints_have_joblibs_message(name: str, kind: str, allowed: str) -> None:
    expected = f"{name}=wrong is not a valid {kind}, expected one of {allowed}"
    for make in (parallel_config, Parallel):
        with pytest.raises(ValueError) as info:
            make(**{name: "wrong"})
        assert str(info.value) == expected


def test_unknown_backend_has_joblibs_message_and_lists_the_known_ones() -> None:
    for make in (Parallel, parallel_config, parallel_backend):
        with pytest.raises(
            UnknownBackendError, match=r"^Invalid backend: 'unit-testing', expected one of \["
        ) as info:
            make(backend="unit-testing")
        known = str(info.value).split("expected one of [", 1)[1].split("]", 1)[0]
        # Sorted, as joblib lists them; 'dask' and 'ray' join when first used or named.
        names = [name.strip(" '") for name in known.split(",")]
        assert names == sorted(names)
        assert {"loky", "multiprocessing", "sequential", "threading"} <= set(names)
        assert "register_parallel_backend" in str(info.value)


def test_ray_is_known_by_name() -> None:
    # Registered on first use, as "dask": naming it does not fail (nor start ray).
    before = dict(BACKENDS)
    try:
        parallel_config("ray")
        assert "ray" in BACKENDS
    finally:
        # Leave the registry as it was: other tests list the known names.
        registry._backends.clear()
        registry._backends.update(before)


def test_timeout_without_workers_warns_once_with_joblibs_text() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert Parallel(n_jobs=1, timeout=1)(delayed(square)(i) for i in range(50)) == [
            i * i for i in range(50)
        ]
    assert [str(w.message) for w in caught] == [
        "The backend class 'SequentialBackend' does not support timeout. You have set 'timeout=1' "
        "in Parallel but the 'timeout' parameter will not be used."
    ]
    assert issubclass(caught[0].category, UserWarning)


# -- nesting_level and what the blocks give -----------------------------------------------------


@pytest.mark.parametrize("inner", ["loky", "threading"])
@pytest.mark.parametrize("outer", ["loky", "threading"])
def test_backends_carry_joblibs_nesting_level(outer: str, inner: str) -> None:
    assert nesting_levels_seen(inner) == {"parallel_config": 0, "parallel_backend": 0, "Parallel": 0}
    seen = Parallel(n_jobs=2, backend=outer)(delayed(nesting_levels_seen)(inner) for _ in range(2))
    assert seen == [{"parallel_config": 1, "parallel_backend": 1, "Parallel": 1}] * 2


def test_parallel_config_gives_a_backend_object_and_keeps_the_name_active() -> None:
    with parallel_config("threading", n_jobs=2) as config:
        assert isinstance(config["backend"], ThreadingBackend)
        assert config["n_jobs"] == 2
        # Each Parallel makes its own backend from the name: two calls never share one's state.
        assert get_active_config()["backend"] == "threading"
        assert Parallel().backend is not config["backend"]
    assert get_active_config() == {}
    custom = ThreadingBackend()
    with parallel_config(custom) as config:
        assert config["backend"] is custom
        assert Parallel().backend is custom


def test_a_block_without_a_backend_gives_its_settings() -> None:
    with parallel_config(n_jobs=3) as config:
        assert config["n_jobs"] == 3
        assert config.get("backend") is None


# -- how far the input is read ------------------------------------------------------------------


def _producer(log: Any, count: int) -> Iterator[Any]:
    for i in range(count):
        log.append(f"produced {i}")
        yield delayed(append_then_return)(log, i)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_pre_dispatch_bounds_how_far_a_generator_is_read(backend: str) -> None:
    with multiprocessing.Manager() as manager:
        log = manager.list()
        results = Parallel(n_jobs=2, batch_size=1, pre_dispatch=3, backend=backend)(_producer(log, 6))
        entries = list(log)
    assert results == list(range(6))
    # Three tasks are read, then one more only after a task is done (joblib's contract).
    assert entries[:3] == ["produced 0", "produced 1", "produced 2"]
    assert entries.index("produced 3") > min(i for i, e in enumerate(entries) if e.startswith("consumed"))


@pytest.mark.parametrize(
    ("batch_size", "expected_start"),
    [
        (1, ["produced 0", "consumed 0"]),
        (4, ["produced 0", "produced 1", "produced 2", "produced 3", "consumed 0"]),
    ],
)
def test_one_job_reads_the_input_a_batch_at_a_time(batch_size: int, expected_start: list[str]) -> None:
    log: list[str] = []
    assert Parallel(n_jobs=1, batch_size=batch_size)(_producer(log, 6)) == list(range(6))
    assert log[: len(expected_start)] == expected_start
    assert len(log) == 12


# -- two generator calls alive at once -----------------------------------------------------------


def test_dropping_an_unfinished_loky_generator_does_not_break_the_next_call() -> None:
    first = Parallel(n_jobs=2, backend="loky", return_as="generator")(
        delayed(sleep_then_return)(10, i) for i in range(10)
    )
    started = time.monotonic()
    second = Parallel(n_jobs=2, backend="loky", return_as="generator")(
        delayed(square)(i) for i in range(10, 20)
    )
    # The first call ends (its workers are killed) while the second one runs: joblib's second
    # call fails here ("The executor underlying Parallel has been shutdown").
    del first
    gc.collect()
    assert list(second) == [i * i for i in range(10, 20)]
    assert time.monotonic() - started < 8
    # The next call gets loky's reusable pool again, and works.
    assert Parallel(n_jobs=2)(delayed(square)(i) for i in range(4)) == [0, 1, 4, 9]


@pytest.mark.parametrize("return_as", ["generator", "generator_unordered"])
def test_two_loky_generators_consumed_in_turn_both_finish(return_as: Any) -> None:
    low = Parallel(n_jobs=2, return_as=return_as)(delayed(square)(i) for i in range(20))
    high = Parallel(n_jobs=2, return_as=return_as)(delayed(square)(i) for i in range(20, 40))
    taken: list[int] = []
    for a, b in zip(low, high, strict=True):
        taken += [a, b]
    assert sorted(taken) == sorted(i * i for i in range(40))


# -- runaway recursion ---------------------------------------------------------------------------


def _recursive_parallel() -> list[Any]:
    return Parallel()(delayed(_recursive_parallel)() for _ in range(2))


def test_runaway_recursive_calls_raise_recursion_error() -> None:
    # joblib's thread-bomb test: each level runs in the caller (threads one level down, then
    # sequential), so the recursion ends in RecursionError, not in a machine full of threads.
    # Parsing pre_dispatch near the recursion limit made CPython 3.11 raise SystemError instead.
    with parallel_config("threading", n_jobs=2):
        for _ in range(5):
            with pytest.raises(RecursionError):
                _recursive_parallel()
