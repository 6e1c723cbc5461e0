"""The static scan of a pickle: the globals named, the calls made with them, where it ends."""

from __future__ import annotations

import collections
import copyreg
import fractions
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from zoblib.safety.scan import scan_globals


class WithNewArgs:
    """Pickled with NEWOBJ (protocol 2 and up)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __getnewargs__(self) -> tuple[int]:
        return (self.value,)


class WithNewArgsEx(WithNewArgs):
    """Pickled with NEWOBJ_EX (protocol 4 and up)."""

    def __getnewargs_ex__(self) -> tuple[tuple[()], dict[str, int]]:
        return (), {"value": self.value}


def _calls_of(data: bytes, qualname: str) -> int:
    return sum(n for (_, name), n in scan_globals(data).calls.items() if name == qualname)


@pytest.fixture
def getattr_extension() -> Iterator[int]:
    """An extension code mapped to builtins.getattr, as an application could register one."""
    code = 0xF2
    copyreg.add_extension("builtins", "getattr", code)
    try:
        yield code
    finally:
        copyreg.remove_extension("builtins", "getattr", code)


def test_the_scan_follows_the_memo() -> None:
    value = [collections.OrderedDict(a=1), collections.OrderedDict(b=2)]
    scan = scan_globals(pickle.dumps(value, protocol=4))
    assert scan.named == (("collections", "OrderedDict"),)
    assert scan.calls == {("collections", "OrderedDict"): 2}
    with pytest.raises(ValueError):
        scan_globals(b"\x80\x04h\x05.")  # a memo entry never stored


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_counts_the_arrays_numpy_rebuilds(protocol: int) -> None:
    value = {"a": np.zeros(3), "b": [np.ones(2), np.arange(4).reshape(2, 2).T], "c": 1.5}
    data = pickle.dumps(value, protocol=protocol)
    # numpy's reduce: _reconstruct under protocols 2-4, _frombuffer (in-band buffer) under 5.
    assert _calls_of(data, "_reconstruct") + _calls_of(data, "_frombuffer") == 3
    assert ("numpy", "dtype") in scan_globals(data).named


@pytest.mark.parametrize(
    ("value", "protocol", "qualname"),
    [
        (WithNewArgs(1), 2, "WithNewArgs"),  # NEWOBJ
        (WithNewArgsEx(1), 4, "WithNewArgsEx"),  # NEWOBJ_EX
        (fractions.Fraction(1, 3), 4, "Fraction"),  # REDUCE
    ],
)
def test_counts_every_call_opcode(value: Any, protocol: int, qualname: str) -> None:
    data = pickle.dumps([value, value, type(value)(2)], protocol=protocol)
    assert _calls_of(data, qualname) == 2  # the second item is the memo's first


def test_counts_inst_and_obj() -> None:
    inst = b"(I1\nI3\nifractions\nFraction\n."
    obj = b"(cfractions\nFraction\nI1\nI3\no."
    for data in (inst, obj):
        scan = scan_globals(data)
        assert scan.named == (("fractions", "Fraction"),)
        assert scan.calls == {("fractions", "Fraction"): 1}
        assert pickle.loads(data) == fractions.Fraction(1, 3)
    with pytest.raises(ValueError, match="no class"):
        scan_globals(b"(o.")  # OBJ with nothing above its MARK: pickle fails on it too


def test_a_global_passed_is_named_but_not_called() -> None:
    scan = scan_globals(pickle.dumps(collections.defaultdict(list), protocol=4))
    assert set(scan.named) == {("collections", "defaultdict"), ("builtins", "list")}
    assert scan.calls == {("collections", "defaultdict"): 1}


def test_end_is_past_stop_whatever_follows() -> None:
    data = pickle.dumps({"a": [1, 2, 3]}, protocol=4)
    assert scan_globals(data).end == len(data)
    assert scan_globals(data + b"array bytes that follow").end == len(data)
    with pytest.raises(ValueError):
        scan_globals(data[:-1])  # no STOP


def test_a_registered_extension_code_is_the_global_it_maps_to(getattr_extension: int) -> None:
    # getattr through EXT1 is reported as getattr is through GLOBAL: by its use.
    code = bytes([getattr_extension])
    misuse = b"\x80\x02\x82" + code + b"(I1\nV__class__\ntR."
    assert scan_globals(misuse).named == (("builtins", "getattr"),)
    class_method = b"\x80\x02\x82" + code + b"czoneinfo\nZoneInfo\n\x8c\x09_unpickle\x86R."
    assert scan_globals(class_method).named == (("zoneinfo", "ZoneInfo"), ("zoneinfo", "ZoneInfo._unpickle"))
