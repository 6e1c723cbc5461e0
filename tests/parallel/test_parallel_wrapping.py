"""``wrap_non_picklable_objects``: joblib's wrapper that sends functions and classes by value.

The wrapped objects are defined inside the tests (so the standard ``pickle`` cannot send them by
reference), run in real loky and multiprocessing workers, and pickled between fresh processes.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from parallel_helpers import call_in_worker

import zoblib
from zoblib import Parallel, delayed, wrap_non_picklable_objects
from zoblib.parallel.cloudpickle_wrapper import CallableObjectWrapper, CloudpickledObjectWrapper

PROCESS_BACKENDS = ["loky", "multiprocessing"]


def test_it_is_joblibs_public_name() -> None:
    assert zoblib.wrap_non_picklable_objects is wrap_non_picklable_objects
    assert "wrap_non_picklable_objects" in zoblib.__all__


def test_a_local_function_pickles_only_once_wrapped() -> None:
    offset = 10

    def add_offset(x: int) -> int:
        return x + offset

    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(add_offset)
    wrapped = wrap_non_picklable_objects(add_offset)
    assert wrapped(1) == 11
    assert wrapped.__name__ == "add_offset"  # attributes are read through
    restored = pickle.loads(pickle.dumps(wrapped))
    assert isinstance(restored, CallableObjectWrapper)
    assert restored(1) == 11


def test_keep_wrapper_false_unpickles_the_bare_function() -> None:
    wrapped = wrap_non_picklable_objects(lambda x: x * 3, keep_wrapper=False)
    restored = pickle.loads(pickle.dumps(wrapped))
    assert type(restored).__name__ == "function"
    assert restored(2) == 6


@pytest.mark.parametrize("keep_wrapper", [True, False])
@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_a_wrapped_local_function_runs_in_workers(backend: str, keep_wrapper: bool) -> None:
    offset = 10

    def add_offset(x: int) -> int:
        return x + offset

    wrapped = wrap_non_picklable_objects(add_offset, keep_wrapper=keep_wrapper)
    results = Parallel(n_jobs=2, backend=backend)(delayed(call_in_worker)(wrapped, i) for i in range(4))
    assert [value for _, value, _, _ in results] == [10, 11, 12, 13]
    assert os.getpid() not in {pid for _, _, pid, _ in results}
    # In the worker: the wrapper again (which the standard pickle can send on), or the function.
    expected = ("CallableObjectWrapper", True) if keep_wrapper else ("function", False)
    assert {(kind, repicklable) for kind, _, _, repicklable in results} == {expected}


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_a_wrapped_function_can_be_the_task_itself(backend: str) -> None:
    scale = 7
    times = wrap_non_picklable_objects(lambda x: x * scale)
    assert Parallel(n_jobs=2, backend=backend)(delayed(times)(i) for i in range(4)) == [0, 7, 14, 21]


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_a_wrapped_class_makes_wrapped_instances(backend: str) -> None:
    offset = 5

    @wrap_non_picklable_objects
    class Adder:
        """Adds its n and the offset."""

        def __init__(self, n: int) -> None:
            self.n = n

        def __call__(self, x: int) -> int:
            return x + self.n + offset

    adder = Adder(1)
    assert isinstance(adder, CloudpickledObjectWrapper)
    assert type(adder).__name__ == "Adder" and Adder.__doc__ == "Adds its n and the offset."
    assert adder.n == 1
    assert adder(1) == 7  # callable here too (joblib's is only once unpickled)
    restored = pickle.loads(pickle.dumps(adder))
    assert (restored.n, restored(1)) == (1, 7)
    results = Parallel(n_jobs=2, backend=backend)(delayed(call_in_worker)(adder, i) for i in range(2))
    assert [(kind, value) for kind, value, _, _ in results] == [
        ("CallableObjectWrapper", 6),
        ("CallableObjectWrapper", 7),
    ]


def test_a_wrapped_object_that_is_not_callable() -> None:
    class Box:
        def __init__(self) -> None:
            self.content = [1, 2]

    wrapped = wrap_non_picklable_objects(Box())
    assert not callable(wrapped)
    restored = pickle.loads(pickle.dumps(wrapped))
    assert isinstance(restored, CloudpickledObjectWrapper) and restored.content == [1, 2]


_WRITER = """
import pickle
import sys

from zoblib import wrap_non_picklable_objects


def make_scaler():
    scale = 3

    def times(x):
        return x * scale

    return times


@wrap_non_picklable_objects
def plus_hundred(x):  # defined in __main__: the loading process has no such function
    return x + 100


with open(sys.argv[1], "wb") as handle:
    pickle.dump(
        [
            wrap_non_picklable_objects(make_scaler()),
            plus_hundred,
            wrap_non_picklable_objects(lambda x: -x, keep_wrapper=False),
        ],
        handle,
    )
"""

_READER = """
import pickle
import sys

with open(sys.argv[1], "rb") as handle:
    functions = pickle.load(handle)
print([f(2) for f in functions], [type(f).__name__ for f in functions])
"""


def test_wrapped_functions_travel_between_fresh_processes_with_the_standard_pickle(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(_WRITER))
    payload = tmp_path / "functions.pkl"
    subprocess.run([sys.executable, str(script), str(payload)], check=True, timeout=120)
    read = subprocess.run(
        [sys.executable, "-c", _READER, str(payload)],
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (
        read.stdout.strip() == "[6, 102, -2] ['CallableObjectWrapper', 'CallableObjectWrapper', 'function']"
    )
