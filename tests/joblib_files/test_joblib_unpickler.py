"""The joblib unpickler combines with a loading policy by inheritance, as safe loading's will:
``class Safe(JoblibUnpickler, Guarded)``. The guard here is this test's own small policy."""

from __future__ import annotations

import functools
import io
import pickle
import re
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np
import pytest

import zoblib
from zoblib.joblib_format import JoblibReading, JoblibUnpickler, identify, load_joblib_file


class Guard(pickle._Unpickler):
    """A policy: records every global and BUILD it sees, refuses the globals it is given."""

    seen: ClassVar[list[tuple[str, str]]] = []
    builds: ClassVar[list[str]] = []

    def __init__(self, file: Any, *, refuse: frozenset[str] = frozenset(), **options: Any) -> None:
        super().__init__(file, **options)
        self.refuse = refuse

    def find_class(self, module: str, name: str) -> Any:
        self.seen.append((module, name))
        if f"{module}.{name}" in self.refuse:
            raise zoblib.ArchiveError(None, f"refused {module}.{name}")
        return super().find_class(module, name)

    def load_build(self) -> None:
        self.builds.append(type(self.stack[-2]).__name__)
        super().load_build()

    def load_ext1(self) -> None:
        raise zoblib.ArchiveError(None, "the guard refuses EXT1")


class GuardedJoblibUnpickler(JoblibUnpickler, Guard):
    pass


@pytest.fixture(autouse=True)
def _fresh_records() -> None:
    Guard.seen.clear()
    Guard.builds.clear()


@pytest.fixture(params=[0, 3], ids=["uncompressed", "zlib"])
def dumped(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    path = tmp_path / "data.pkl"
    value = {"x": np.arange(10.0), "objects": np.array([Fraction(1, 3), "s"], dtype=object)}
    joblib.dump(value, path, compress=request.param)
    return path


def _load(path: Path, **options: Any) -> Any:
    found = identify(str(path))
    factory = functools.partial(GuardedJoblibUnpickler, **options)
    return load_joblib_file(str(path), compression=found.compression, unpickler=factory)


def test_the_policy_sees_every_global_but_joblib_s_wrappers(dumped: Path) -> None:
    value = _load(dumped)
    assert value["objects"][0] == Fraction(1, 3)
    assert ("fractions", "Fraction") in Guard.seen  # from the object array's nested pickle
    assert ("numpy", "dtype") in Guard.seen
    assert not [entry for entry in Guard.seen if entry[0].startswith("joblib")]


def test_the_policy_applies_to_nested_pickles(dumped: Path) -> None:
    with pytest.raises(zoblib.ArchiveError, match=re.escape("refused fractions.Fraction")):
        _load(dumped, refuse=frozenset({"fractions.Fraction"}))


def test_the_policy_s_build_runs_before_arrays_replace_wrappers(dumped: Path) -> None:
    _load(dumped)
    assert "NumpyArrayWrapper" in Guard.builds


def test_every_opcode_reaches_the_policy_s_method_by_name(tmp_path: Path) -> None:
    path = tmp_path / "ext.pkl"
    path.write_bytes(b"\x80\x02\x82\x01.")  # PROTO 2, EXT1 1, STOP
    with pytest.raises(zoblib.ArchiveError, match="the guard refuses EXT1"):
        load_joblib_file(str(path), unpickler=GuardedJoblibUnpickler)
    with pytest.raises(zoblib.ArchiveCorruptedError, match="extension code"):
        load_joblib_file(str(path))  # plain pickle's answer, with the default unpickler


def test_nested_unpicklers_are_of_the_same_class_and_options() -> None:
    reading = JoblibReading("<memory>", None, None, True)
    outer = GuardedJoblibUnpickler(io.BytesIO(b""), reading, refuse=frozenset({"a.b"}))
    inner = outer.nested(io.BytesIO(b""))
    assert type(inner) is GuardedJoblibUnpickler
    assert inner.refuse == frozenset({"a.b"}) and inner.reading is reading


def test_joblib_s_wrapper_classes_need_no_joblib() -> None:
    reading = JoblibReading("<memory>", None, None, True)
    unpickler = JoblibUnpickler(io.BytesIO(b""), reading)
    for module in (
        "joblib.numpy_pickle",
        "joblib.numpy_pickle_compat",
        "sklearn.externals.joblib.numpy_pickle",
    ):
        for name in ("NumpyArrayWrapper", "NDArrayWrapper", "ZNDArrayWrapper"):
            stand_in = unpickler.find_class(module, name)
            assert stand_in.__module__ == "zoblib.joblib_format.wrappers"
    assert unpickler.find_class("joblib.numpy_pickle", "NumpyArrayWrapper").__name__ == "NumpyArrayWrapper"
