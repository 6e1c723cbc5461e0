"""Memory's joblib API: hits and misses, keys, call variants, clearing, verbose messages."""

from __future__ import annotations

import asyncio
import pickle
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from memory_helpers import Counter

import zoblib
from zoblib.errors import CacheCollisionWarning, CacheEntryWarning, CacheWarning, FunctionChangedWarning
from zoblib.memory import (
    AsyncNotMemorizedFunc,
    MemorizedFunc,
    MemorizedResult,
    Memory,
    MissReason,
    NotMemorizedFunc,
    NotMemorizedResult,
)


def test_second_call_hits_and_returns_the_same_value(memory: Memory, counter: Counter) -> None:
    @memory.cache
    def f(x: int, y: int = 2) -> dict[str, int]:
        counter(x, y)
        return {"sum": x + y}

    assert f(1) == {"sum": 3}
    assert f(1) == {"sum": 3}
    assert len(counter) == 1
    assert f(2) == {"sum": 4}
    assert len(counter) == 2


def test_defaults_are_part_of_the_key(memory: Memory, counter: Counter) -> None:
    @memory.cache
    def f(x: int, y: int = 2) -> int:
        counter(x, y)
        return x + y

    f(1)
    f(1, 2)
    f(x=1, y=2)
    assert len(counter) == 1
    f(1, 3)
    assert len(counter) == 2


def test_ignored_arguments_are_left_out_of_the_key(memory: Memory, counter: Counter) -> None:
    @memory.cache(ignore=["verbose"])
    def f(x: int, verbose: int = 0) -> int:
        counter(x, verbose)
        return x

    f(1, verbose=0)
    f(1, verbose=5)
    assert len(counter) == 1


def test_ignoring_an_unknown_argument_fails(memory: Memory) -> None:
    def f(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="not arguments"):
        memory.cache(f, ignore=["nope"])


def test_wrong_arguments_raise_like_the_function(memory: Memory) -> None:
    f = memory.cache(lambda x: x)
    with pytest.raises(TypeError):
        f(1, 2)


def test_varargs_and_kwargs_are_in_the_key(memory: Memory, counter: Counter) -> None:
    @memory.cache
    def f(*args: int, **kwargs: int) -> int:
        counter(args, kwargs)
        return sum(args) + sum(kwargs.values())

    assert f(1, 2, a=3) == 6
    assert f(1, 2, a=3) == 6
    assert f(1, 2, b=3) == 6
    assert len(counter) == 2


def test_numpy_arguments_and_results(memory: Memory, counter: Counter) -> None:
    @memory.cache
    def f(a: np.ndarray) -> np.ndarray:
        counter()
        return a * 2

    a = np.arange(1000.0)
    np.testing.assert_array_equal(f(a), a * 2)
    np.testing.assert_array_equal(f(a.copy()), a * 2)
    assert len(counter) == 1
    f(a + 1)
    assert len(counter) == 2


def test_code_change_invalidates_with_joblib_warning(location: Path, counter: Counter) -> None:
    memory = Memory(location, verbose=1)
    namespace: dict[str, Any] = {"counter": counter}
    exec("def f(x):\n    counter(x)\n    return x + 1\n", namespace)
    first = memory.cache(namespace["f"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert first(1) == 2
    exec("def f(x):\n    counter(x)\n    return x + 2\n", namespace)
    second = memory.cache(namespace["f"])
    assert second.func_id == first.func_id
    # Without source (exec), a change cannot be told from a name collision: joblib warns so too.
    with (
        pytest.warns(FunctionChangedWarning, match="Clearing function cache identified by"),
        pytest.warns(CacheCollisionWarning, match="Cannot detect name collisions for function 'f'"),
    ):
        assert second(1) == 3
    assert second.last_status is not None and second.last_status.reason is MissReason.CODE_CHANGED
    assert len(counter) == 2
    assert second(1) == 3
    assert len(counter) == 2
    # The old entries were cleared: only the new result remains.
    assert len(second.list_entries()) == 1


def test_code_change_detected_from_source_file(tmp_path: Path, location: Path) -> None:
    import importlib.util

    def load(code: str) -> Any:
        path = tmp_path / "changing_module.py"
        path.write_text(textwrap.dedent(code))
        spec = importlib.util.spec_from_file_location("changing_module", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.f

    memory = Memory(location, verbose=0)
    first = memory.cache(load("def f(x):\n    return x + 1\n"))
    assert first(1) == 2
    assert first.check_call_in_cache(1)
    moved = memory.cache(load("\n\n\ndef f(x):\n    return x + 1\n"))  # only moved: still hits
    assert moved.cache_status(1).hit
    edited = memory.cache(load("def f(x):\n    return x + 100  # edited\n"))
    assert edited.cache_status(1).reason is MissReason.CODE_CHANGED
    assert edited(1) == 101


def test_bound_method_includes_the_instance_in_the_key(memory: Memory, counter: Counter) -> None:
    class Scaler:
        def __init__(self, factor: int) -> None:
            self.factor = factor

        def scale(self, x: int) -> int:
            counter(self.factor, x)
            return self.factor * x

    two, three = Scaler(2), Scaler(3)
    scale_two, scale_three = memory.cache(two.scale), memory.cache(three.scale)
    assert scale_two(5) == 10
    assert scale_two(5) == 10
    assert scale_three(5) == 15
    assert len(counter) == 2


class CachedInClassBody:
    memory: Memory | None = None

    def __init__(self, offset: int) -> None:
        self.offset = offset


def test_method_decorated_in_class_body(location: Path, counter: Counter) -> None:
    memory = Memory(location, verbose=0)

    class Model:
        def __init__(self, offset: int) -> None:
            self.offset = offset

        @memory.cache
        def predict(self, x: int) -> int:
            counter(self.offset, x)
            return self.offset + x

    assert Model(1).predict(1) == 2
    assert Model(1).predict(1) == 2
    assert Model(5).predict(1) == 6
    assert len(counter) == 2
    assert Model(1).predict.check_call_in_cache(1)


def test_lambdas_are_cached_apart(memory: Memory) -> None:
    double = memory.cache(lambda x: 2 * x)
    triple = memory.cache(lambda x: 3 * x)
    assert double(2) == 4 and triple(2) == 6
    assert double(2) == 4 and triple(2) == 6
    assert double.func_id != triple.func_id


def test_async_function_result_is_cached(memory: Memory, counter: Counter) -> None:
    @memory.cache
    async def fetch(x: int) -> int:
        counter(x)
        await asyncio.sleep(0)
        return x * 10

    assert asyncio.run(fetch(1)) == 10
    assert asyncio.run(fetch(1)) == 10
    assert len(counter) == 1
    reference = asyncio.run(fetch.call_and_shelve(1))
    assert isinstance(reference, MemorizedResult) and reference.get() == 10
    output, metadata = asyncio.run(fetch.call(1))
    assert output == 10 and len(counter) == 2 and metadata["duration"] >= 0


def test_async_function_without_location_calls_through(counter: Counter) -> None:
    @Memory(None).cache
    async def fetch(x: int) -> int:
        counter(x)
        return x

    assert isinstance(fetch, AsyncNotMemorizedFunc)
    assert asyncio.run(fetch(1)) == 1 and asyncio.run(fetch(1)) == 1
    assert len(counter) == 2
    assert asyncio.run(fetch.call_and_shelve(3)).get() == 3


def test_call_always_recomputes_and_stores(memory: Memory, counter: Counter) -> None:
    @memory.cache
    def f(x: int) -> int:
        counter(x)
        return x

    f(1)
    output, metadata = f.call(1)
    assert output == 1 and len(counter) == 2
    assert set(metadata) >= {"duration", "input_args", "time", "size"}
    assert f.last_status is not None and f.last_status.reason is MissReason.FORCED
    f(1)
    assert len(counter) == 2


def test_call_and_shelve_returns_a_reference(memory: Memory, counter: Counter) -> None:
    @memory.cache
    def f(x: int) -> list[int]:
        counter(x)
        return [x] * 3

    reference = f.call_and_shelve(4)
    assert isinstance(reference, MemorizedResult)
    assert reference.get() == [4, 4, 4]
    assert f.call_and_shelve(4).get() == [4, 4, 4]
    assert len(counter) == 1
    restored = pickle.loads(pickle.dumps(reference))
    assert restored.get() == [4, 4, 4]
    assert "MemorizedResult(location=" in repr(restored)
    assert reference.duration is not None
    reference.clear()
    with pytest.raises(KeyError):
        restored.get()
    assert not f.check_call_in_cache(4)


def test_memorized_result_get_in_another_process(memory: Memory) -> None:
    import concurrent.futures
    import multiprocessing

    from memory_helpers import add, load_shelved

    reference = memory.cache(add).call_and_shelve(1, 2)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(load_shelved, reference).result() == 3


def test_check_call_in_cache(memory: Memory) -> None:
    f = memory.cache(lambda x: x)
    assert not f.check_call_in_cache(1)
    f(1)
    assert f.check_call_in_cache(1)
    assert not f.check_call_in_cache(2)


def test_function_clear_and_memory_clear(location: Path, counter: Counter) -> None:
    memory = Memory(location, verbose=0)

    @memory.cache
    def f(x: int) -> int:
        counter(x)
        return x

    f(1)
    f.clear(warn=False)
    f(1)
    assert len(counter) == 2
    with pytest.warns(CacheWarning, match="Flushing completely the cache"):
        memory.clear()
    assert memory.list_entries() == []
    f(1)
    assert len(counter) == 3
    memory.clear(warn=False)
    assert not f.check_call_in_cache(1)


def test_eval(memory: Memory, counter: Counter) -> None:
    def f(x: int) -> int:
        counter(x)
        return x * 2

    assert memory.eval(f, 3) == 6
    assert memory.eval(f, 3) == 6
    assert len(counter) == 1
    assert Memory(None).eval(f, 3) == 6


def test_location_none_calls_through(counter: Counter) -> None:
    memory = Memory(location=None)

    @memory.cache
    def f(x: int) -> int:
        counter(x)
        return x

    assert isinstance(f, NotMemorizedFunc)
    assert f(1) == 1 and f(1) == 1
    assert len(counter) == 2
    shelved = f.call_and_shelve(2)
    assert isinstance(shelved, NotMemorizedResult) and shelved.get() == 2
    shelved.clear()
    with pytest.raises(KeyError):
        shelved.get()
    assert f.call(5) == (5, {})
    assert not f.check_call_in_cache(1)
    f.clear()
    memory.clear(warn=False)
    assert memory.reduce_size(items_limit=0) == []


def test_pathlib_and_str_locations_share_the_cache(tmp_path: Path, counter: Counter) -> None:
    def f(x: int) -> int:
        counter(x)
        return x

    Memory(tmp_path / "c", verbose=0).cache(f)(1)
    Memory(str(tmp_path / "c"), verbose=0).cache(f)(1)
    Memory(f"file://{tmp_path / 'c'}", verbose=0).cache(f)(1)
    assert len(counter) == 1
    assert (tmp_path / "c" / "zoblib").is_dir()


def test_caching_a_cached_function_again(memory: Memory, counter: Counter) -> None:
    def f(x: int) -> int:
        counter(x)
        return x

    once = memory.cache(f)
    twice = memory.cache(once)
    assert isinstance(twice, MemorizedFunc) and twice.func is f
    once(1)
    twice(1)
    assert len(counter) == 1


def test_decorator_with_and_without_arguments(memory: Memory) -> None:
    @memory.cache()
    def f(x: int) -> int:
        return x

    @memory.cache(verbose=0, mmap_mode=None)
    def g(x: int) -> int:
        return x

    assert isinstance(f, MemorizedFunc) and isinstance(g, MemorizedFunc)
    assert f.__name__ == "f" and f.__wrapped__ is f.func  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="callable"):
        memory.cache(f, cache_validation_callback=3)  # type: ignore[arg-type]


def test_entry_is_a_zoblib_archive(memory: Memory) -> None:
    f = memory.cache(lambda: {"a": np.arange(100_000)})
    f()
    (entry,) = memory.list_entries()
    archive = Path(entry.location) / "output.zarr"
    assert archive.is_dir()
    np.testing.assert_array_equal(zoblib.load(archive)["a"], np.arange(100_000))


def test_zip_container_option(location: Path) -> None:
    memory = Memory(location, verbose=0, mmap_mode="r", backend_options={"container": "zip"})
    f = memory.cache(lambda n: np.ones(n))
    assert isinstance(f(100_000), np.memmap)
    assert isinstance(f(100_000), np.memmap)
    (entry,) = memory.list_entries()
    assert (Path(entry.location) / "output.pkl").is_file()
    # The same cache read with the default container still finds the entry.
    assert Memory(location, verbose=0).cache(f.func).check_call_in_cache(100_000)


def test_mmap_mode_returns_memmaps(location: Path) -> None:
    memory = Memory(location, verbose=0, mmap_mode="r")
    f = memory.cache(lambda n: np.arange(n, dtype=np.float64))
    first, second = f(500_000), f(500_000)
    for result in (first, second):
        assert isinstance(result, np.memmap) and not result.flags.writeable
        np.testing.assert_array_equal(result, np.arange(500_000, dtype=np.float64))
    # The result's recorded digest makes chained cached calls hash it without reading it.
    assert hasattr(second, "zoblib_digest")


def test_compressed_results_come_back_lazy(location: Path) -> None:
    memory = Memory(location, verbose=0, mmap_mode="r", compress=3)
    f = memory.cache(lambda n: np.arange(n, dtype=np.float64))
    f(300_000)
    lazy = f(300_000)
    assert isinstance(lazy, zoblib.LazyArray)
    np.testing.assert_array_equal(np.asarray(lazy[:10]), np.arange(10.0))
    no_mmap = memory.cache(f.func, mmap_mode=None)(300_000)
    assert type(no_mmap) is np.ndarray


def test_cache_validation_callback(memory: Memory, counter: Counter) -> None:
    seen: list[dict[str, Any]] = []

    def accept_once(metadata: dict[str, Any]) -> bool:
        seen.append(metadata)
        return len(seen) < 2

    @memory.cache(cache_validation_callback=accept_once)
    def f(x: int) -> int:
        counter(x)
        return x

    f(1)  # miss: the callback is not asked
    f(1)  # hit: accepted
    f(1)  # rejected: recomputed
    assert len(counter) == 2
    assert f.last_status is not None and f.last_status.reason is MissReason.EXPIRED
    assert {"duration", "time", "input_args"} <= set(seen[0])


def test_expires_after(memory: Memory, counter: Counter) -> None:
    import time

    from zoblib.memory import expires_after

    @memory.cache(cache_validation_callback=expires_after(seconds=0.3))
    def f(x: int) -> int:
        counter(x)
        return x

    f(1)
    f(1)
    assert len(counter) == 1
    time.sleep(0.35)
    f(1)
    assert len(counter) == 2


def test_verbose_messages_mimic_joblib(location: Path, capsys: pytest.CaptureFixture[str]) -> None:
    memory = Memory(location, verbose=10)

    @memory.cache
    def add_one(x: int) -> int:
        return x + 1

    add_one(1)
    out = capsys.readouterr().out
    assert out.startswith("_" * 80 + "\n[Memory] Calling ")
    assert "test_memory_api.test_verbose_messages_mimic_joblib.add_one...\nadd_one(1)\n" in out
    last = out.rstrip("\n").splitlines()[-1]
    assert len(last) == 80 and last.lstrip("_").startswith("add_one - ") and last.endswith("min")
    add_one(1)
    out = capsys.readouterr().out
    assert "[Memory]" in out and ": Loading add_one(x=1) from " in out
    assert "add_one cache loaded - " in out
    Memory(location, verbose=0).cache(add_one.func)(2)
    assert capsys.readouterr().out == ""


def test_unpicklable_result_warns_and_is_returned(memory: Memory) -> None:
    import threading

    @memory.cache
    def make_lock() -> Any:
        return threading.Lock()

    with pytest.warns(CacheEntryWarning, match="could not store"):
        lock = make_lock()
    assert hasattr(lock, "acquire")
    assert memory.list_entries() == []


def test_memory_and_memorized_func_pickle(memory: Memory) -> None:
    restored = pickle.loads(pickle.dumps(memory))
    assert repr(restored) == repr(memory)
    from memory_helpers import add

    f = memory.cache(add)
    assert f(1) == 11
    state = f.__getstate__()
    clone = MemorizedFunc.__new__(MemorizedFunc)
    clone.__setstate__(state)
    assert clone.check_call_in_cache(1)


def test_chained_cached_steps_do_not_rehash_memmapped_results(
    location: Path, monkeypatch: pytest.MonkeyPatch, counter: Counter
) -> None:
    import zoblib.hashing.pickler as pickler

    memory = Memory(location, verbose=0, mmap_mode="r")
    ramp = memory.cache(lambda n: np.arange(n, dtype=np.float64))

    @memory.cache
    def total(a: np.ndarray) -> float:
        counter()
        return float(a.sum())

    r = ramp(200_000)
    assert total(r) == total(r) == float(np.arange(200_000.0).sum())
    assert len(counter) == 1

    def no_reading(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("the memmapped result's data was hashed")

    monkeypatch.setattr(pickler, "array_digest", no_reading)
    assert total(ramp(200_000)) == float(np.arange(200_000.0).sum())
    assert len(counter) == 1


def test_cache_whose_code_record_cannot_be_written_still_serves_hits(location: Path) -> None:
    from zoblib.memory import LocalStoreBackend
    from zoblib.memory.memorized import forget_verified_code

    class ReadOnlyRecords(LocalStoreBackend):
        def write_function_record(self, func_id: str, record: Any) -> None:
            raise PermissionError(13, "read-only file system", func_id)

    writer = Memory(location, verbose=0).cache(lambda x: x * 2)
    writer(1)
    store_location = writer.store_backend.location
    assert store_location == str(location / "zoblib")
    (location / "zoblib" / writer.func_id / "func_code.json").unlink()
    forget_verified_code(store_location)  # as in a new process
    reader = MemorizedFunc(writer.func, ReadOnlyRecords(store_location), verbose=0)
    with pytest.warns(CacheEntryWarning, match="could not record"):
        assert reader(1) == 2
    assert reader.last_status is not None and reader.last_status.hit


def _notebook_function(kernel: str, body: str) -> Any:
    """A function as a Jupyter cell defines it: its file name holds the kernel's run number."""
    import linecache

    filename = f"/tmp/ipykernel_{kernel}/2860361412.py"
    source = f"def cell_function(x):\n    return {body}\n"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace["cell_function"]


def test_notebook_functions_hit_after_a_kernel_restart(location: Path) -> None:
    memory = Memory(location, verbose=0)
    first = memory.cache(_notebook_function("1234", "x + 1"))
    assert first(1) == 2
    restarted = memory.cache(_notebook_function("98765", "x + 1"))
    assert restarted.func_id == first.func_id
    assert "ipykernel_" not in restarted.func_id and restarted.func_id.startswith("__main__-")
    assert restarted.cache_status(1).hit
    edited = memory.cache(_notebook_function("98765", "x + 2"))
    assert edited.cache_status(1).reason is MissReason.CODE_CHANGED
    assert edited(1) == 3  # verbose=0: cleared without a warning, as in joblib
    assert edited.last_status is not None and edited.last_status.reason is MissReason.CODE_CHANGED


class Multiplier:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return self.factor * x


def test_partials_and_callable_instances_keep_their_state_in_the_key(memory: Memory) -> None:
    import functools

    from memory_helpers import add

    plus_one, plus_two = memory.cache(functools.partial(add, y=1)), memory.cache(functools.partial(add, y=2))
    assert plus_one(1) == 2 and plus_two(1) == 3
    assert plus_one(1) == 2 and plus_two(1) == 3
    twice, thrice = memory.cache(Multiplier(2)), memory.cache(Multiplier(3))
    assert twice(5) == 10 and thrice(5) == 15
    assert twice.check_call_in_cache(5) and twice.func_id.endswith("/Multiplier")
    # The code record of an instance is its class's __call__: stable across processes.
    from zoblib.memory.keys import code_record

    assert code_record(Multiplier(2)).digest == code_record(Multiplier(7)).digest
    assert code_record(np.add).digest == code_record(np.add).digest
