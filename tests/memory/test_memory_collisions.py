"""Two cached functions sharing one cache folder: joblib's ``JobLibCollisionWarning`` rules.

joblib warns when the code stored for a function's folder differs from the function's and the
old function still stands unchanged where it was recorded (two functions of one name in one
module), and when a collision cannot be told from an edit (lambdas, functions without source).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import zoblib
from zoblib.errors import CacheCollisionWarning, CacheWarning
from zoblib.memory import JobLibCollisionWarning, Memory


def _sum(a: int, b: int) -> int:
    return a + b


def _product(a: int, b: int) -> int:
    return a * b


@contextmanager
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def collisions(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, CacheCollisionWarning)]


def test_the_warning_is_a_cache_warning_under_joblibs_name() -> None:
    assert JobLibCollisionWarning is CacheCollisionWarning is zoblib.CacheCollisionWarning
    assert issubclass(CacheCollisionWarning, CacheWarning)
    assert issubclass(CacheCollisionWarning, UserWarning)


def test_two_functions_of_one_name_warn_a_possible_collision(memory: Memory) -> None:
    @memory.cache
    def name_collision(x: int) -> int:
        """A first function called name_collision"""
        return x

    first = name_collision

    @memory.cache
    def name_collision(x: int) -> int:
        """A second function called name_collision"""
        return x + 1

    second = name_collision
    assert first.func_id == second.func_id
    with recorded() as caught:
        assert first(1) == 1
        assert second(1) == 2
    assert len(caught) == 1  # joblib's test: this warning and no other
    assert caught[0].category is CacheCollisionWarning
    message = str(caught[0].message)
    assert message.startswith("Possible name collisions between functions 'name_collision'")
    first_line = first.func.__code__.co_firstlineno
    second_line = second.func.__code__.co_firstlineno
    assert f"{__file__}:{first_line}) and 'name_collision' ({__file__}:{second_line})" in message
    assert caught[0].filename == __file__  # it points at the user's call


def test_each_switch_between_them_warns_again_and_results_stay_right(memory: Memory) -> None:
    namespace: dict[str, Any] = {}
    exec("def shared_name(x):\n    return x + 1\n", namespace)
    first = memory.cache(namespace["shared_name"])
    exec("def shared_name(x):\n    return x + 2\n", namespace)
    second = memory.cache(namespace["shared_name"])
    assert first.func_id == second.func_id
    with recorded() as caught:
        assert [first(1), second(1), first(1), first(1), second(1)] == [2, 3, 2, 2, 3]
    # No source: joblib cannot tell a collision from an edit, and says so at each switch.
    assert collisions(caught) == ["Cannot detect name collisions for function 'shared_name'"] * 3


def test_lambdas_made_by_eval_cannot_be_told_apart(memory: Memory) -> None:
    # joblib's test_memory_warning_collision_detection, with the same count.
    a1 = memory.cache(eval("lambda x: x"))
    b1 = memory.cache(eval("lambda x: x+1"))
    with recorded() as caught:
        assert a1(1) == 1
        assert b1(1) == 2
        assert a1(0) == 0
    assert len(caught) == 2
    assert all("cannot detect" in message.lower() for message in collisions(caught))


def test_lambdas_on_one_line_share_a_folder_and_warn(memory: Memory) -> None:
    double, triple = memory.cache(lambda x: 2 * x), memory.cache(lambda x: 3 * x)
    assert double.func_id == triple.func_id
    with recorded() as caught:
        assert (double(2), triple(2), double(3)) == (4, 6, 6)
    line = double.func.__code__.co_firstlineno
    assert (
        collisions(caught)
        == [f"Cannot detect name collisions for function '<lambda> ({__file__}:{line})'"] * 2
    )


def test_lambdas_on_different_lines_do_not_collide(memory: Memory) -> None:
    # zoblib keys lambdas by their line (joblib puts every lambda of a scope in one folder).
    double = memory.cache(lambda x: 2 * x)
    triple = memory.cache(lambda x: 3 * x)
    with recorded() as caught:
        assert (double(2), triple(2), double(3)) == (4, 6, 6)
    assert collisions(caught) == []


def test_replacing_a_functions_code_warns_as_joblib_does(memory: Memory) -> None:
    # joblib's test_memory_in_memory_function_code_change.
    def function_to_cache(a: int, b: int) -> None:
        pass

    function_to_cache.__code__ = _sum.__code__
    cached = memory.cache(function_to_cache)
    with recorded() as caught:
        assert cached(1, 2) == 3
        assert cached(1, 2) == 3
    assert caught == []
    function_to_cache.__code__ = _product.__code__
    with recorded() as caught:
        assert cached(1, 2) == 2
        assert cached(1, 2) == 2
    assert len(collisions(caught)) == 1
    assert "Possible name collisions between functions 'function_to_cache'" in collisions(caught)[0]


_MODULE = """
def name_collision(x):
    return ("first", x)


first = None


def name_collision(x):
    return ("second", x)
"""

_RUN = """
import importlib
import json
import sys
import warnings

import zoblib

sys.path.insert(0, sys.argv[1])
module = importlib.import_module(sys.argv[2])
memory = zoblib.Memory(sys.argv[3], verbose=0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    cached = memory.cache(getattr(module, sys.argv[4]))
    value = cached(1)
print(json.dumps({
    "value": value,
    "reason": cached.last_status.reason.name if cached.last_status.reason else None,
    "warnings": [[w.category.__name__, str(w.message)] for w in caught],
}))
"""


def _run(folder: Path, module: str, location: Path, attribute: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(folder), module, str(location), attribute],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_collision_is_seen_by_another_process(tmp_path: Path, location: Path) -> None:
    # Process 1 caches the first definition (kept under another name); process 2 the second:
    # only the store tells process 2 what was there.
    source = _MODULE.replace("first = None", "first = name_collision")
    (tmp_path / "collide.py").write_text(textwrap.dedent(source))
    one = _run(tmp_path, "collide", location, "first")
    assert one == {"value": ["first", 1], "reason": "NEW_ARGUMENTS", "warnings": []}
    two = _run(tmp_path, "collide", location, "name_collision")
    assert two["value"] == ["second", 1] and two["reason"] == "CODE_CHANGED"
    module_file = tmp_path / "collide.py"
    assert two["warnings"] == [
        [
            "CacheCollisionWarning",
            f"Possible name collisions between functions 'name_collision' ({module_file}:2) "
            f"and 'name_collision' ({module_file}:9)",
        ]
    ]


def test_an_edited_function_is_a_change_not_a_collision(tmp_path: Path, location: Path) -> None:
    module_file = tmp_path / "edited.py"
    module_file.write_text("def compute(x):\n    return ('old', x)\n")
    assert _run(tmp_path, "edited", location, "compute")["value"] == ["old", 1]
    # Edited, and moved down: the old code is no longer at its old place.
    module_file.write_text("import os\n\n\ndef compute(x):\n    return ('new', x)\n")
    second = _run(tmp_path, "edited", location, "compute")
    assert second == {"value": ["new", 1], "reason": "CODE_CHANGED", "warnings": []}


@pytest.mark.parametrize("verbose", [0, 1])
def test_an_unchanged_function_never_warns(location: Path, verbose: int) -> None:
    memory = Memory(location, verbose=verbose)
    cached = memory.cache(_sum)
    again = memory.cache(_sum)
    with recorded() as caught:
        assert cached(1, 2) == again(1, 2) == 3
        assert again(2, 2) == cached(2, 2) == 4
    assert [w for w in caught if issubclass(w.category, CacheWarning)] == []
