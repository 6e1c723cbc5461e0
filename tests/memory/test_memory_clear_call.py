"""``func.clear_call(*args, **kwargs)``: one call's entry deleted, nothing computed, the rest kept.

joblib 1.6.0 has no spelling for it (its ``MemorizedFunc`` has ``clear``, ``call``,
``call_and_shelve`` and ``check_call_in_cache`` only): this is zoblib's, after joblib PR #1542.
"""

from __future__ import annotations

from pathlib import Path

import joblib
from memory_helpers import Counter

from zoblib.memory import Memory
from zoblib.memory.local_store import LocalStoreBackend


def test_joblib_has_no_spelling_of_its_own() -> None:
    assert not hasattr(joblib.memory.MemorizedFunc, "clear_call")
    assert not any("invalidate" in name for name in dir(joblib.memory.MemorizedFunc))


def test_clear_call_removes_one_entry(memory: Memory, counter: Counter) -> None:
    @memory.cache
    def f(x: int, y: int = 10) -> int:
        counter()
        return x + y

    for x in range(4):
        f(x)
    location = Path(f.cache_status(2).location)
    assert location.is_dir()
    assert f.clear_call(2) is True
    assert not location.exists()
    assert [f.check_call_in_cache(x) for x in range(4)] == [True, True, False, True]
    assert f.clear_call(2) is False  # nothing left to remove
    assert len(counter) == 4  # clear_call computes nothing
    f(2)
    assert len(counter) == 5
    store = memory.store_backend
    assert isinstance(store, LocalStoreBackend)
    assert store.totals() == (4, sum(e.size for e in store.iter_entries(f.func_id)))


def test_clear_call_binds_arguments_as_a_call_does(memory: Memory) -> None:
    @memory.cache(ignore=["verbose"])
    def f(x: int, y: int = 10, verbose: bool = False) -> int:
        return x + y

    f(1)
    f(1, 20)
    assert f.clear_call(x=1, y=10, verbose=True) is True  # same call: defaults, ignored argument
    assert not f.check_call_in_cache(1) and f.check_call_in_cache(1, y=20)


def test_clear_call_of_a_method_and_without_a_cache(location: Path) -> None:
    memory = Memory(location, verbose=0)

    class Adder:
        def __init__(self, offset: int) -> None:
            self.offset = offset

        def __reduce__(self) -> tuple[type, tuple[int]]:
            return (Adder, (self.offset,))

        @memory.cache
        def add(self, x: int) -> int:
            return x + self.offset

    adder = Adder(1)
    assert adder.add(2) == 3
    assert adder.add.check_call_in_cache(2)
    assert adder.add.clear_call(2) is True
    assert not adder.add.check_call_in_cache(2)
    assert Memory(None).cache(len).clear_call([1]) is False
