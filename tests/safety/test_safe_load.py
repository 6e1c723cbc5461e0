"""``load(safe=True)``: what loads without a trusted list, what is refused, and how to trust more."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import zoblib


class Custom:
    """A user's class: pickled by reference, so outside the allowlist."""

    def __init__(self, value: int) -> None:
        self.value = value


SAFE_VALUES: dict[str, Any] = {
    "builtins": [
        {"a": [1, 2.5, "x", b"y", None, True], "t": (1, 2), "s": {1}, "f": frozenset([2])},
        [complex(1, 2), bytearray(b"z"), range(3), slice(1, 2), Ellipsis],
    ],
    "stdlib": [
        collections.OrderedDict(a=1), collections.defaultdict(list, a=[1]), collections.Counter("ab"),
        collections.deque([1]), datetime.datetime(2020, 1, 2, tzinfo=datetime.UTC),
        datetime.date(2020, 1, 1), datetime.timedelta(3), decimal.Decimal("1.5"), fractions.Fraction(1, 3),
    ],
    "numpy": [
        np.arange(10), np.arange(100_000.0), np.float32(3), np.dtype("M8[ns]"), np.arange(3).astype(">i4"),
        np.ma.masked_array([1, 2], [0, 1]), np.array([1, "a", None], dtype=object),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), np.datetime64("2020"), np.longdouble(1),
        np.random.default_rng(0), np.random.RandomState(0), np.float64,
    ],
    "scipy": [
        sp.csr_matrix(np.eye(3)), sp.csr_array(np.eye(3)), sp.coo_matrix(np.eye(3)),
        sp.lil_matrix(np.eye(3)), sp.dok_matrix(np.eye(3)), sp.bsr_matrix(np.eye(3)),
        sp.dia_matrix(np.eye(3)),
    ],
    "pandas": [
        pd.DataFrame(
            {"a": [1, 2], "c": pd.Categorical(["a", "b"]), "d": pd.to_datetime(["2020", "2021"])}
        ),
        pd.Series([1.0], index=pd.Index(["i"], name="n")), pd.RangeIndex(3),
        pd.MultiIndex.from_tuples([(1, 2)]), pd.date_range("2020", periods=3, tz="UTC"),
        pd.Series(pd.array([1, None], dtype="Int64")), pd.Timestamp("2020"), pd.Timedelta(1),
        pd.Interval(0, 1), pd.NaT, pd.NA, pd.period_range("2020", periods=2, freq="M"),
        pd.Series(pd.arrays.SparseArray([0, 1, 0])),
        pd.DataFrame({"t": pd.date_range("2020", periods=2, tz="Europe/Paris")}),  # zoneinfo
    ],
}  # fmt: skip


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, (pd.DataFrame, pd.Series, pd.Index)):
        return bool(a.equals(b))
    if sp.issparse(a):
        return (a != b).nnz == 0 and type(a) is type(b)
    if isinstance(a, np.ndarray) and not isinstance(a, np.ma.MaskedArray):
        return bool(a.tolist() == b.tolist())  # load turns arrays to native byte order
    if isinstance(a, np.random.Generator):
        return bool(a.bit_generator.state == b.bit_generator.state)
    if isinstance(a, np.random.RandomState):
        return bool(np.array_equal(a.get_state()[1], b.get_state()[1]))
    return repr(a) == repr(b)


@pytest.mark.parametrize("family", sorted(SAFE_VALUES))
def test_common_values_load_safely(family: str, tmp_path: Path) -> None:
    for number, value in enumerate(SAFE_VALUES[family]):
        path = tmp_path / f"{number}.pkl"
        zoblib.dump(value, path)
        assert zoblib.audit(path).safe, zoblib.audit(path).untrusted
        assert _equal(zoblib.load(path, safe=True), value)


@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_safe_load_keeps_memory_maps(mmap_mode: str | None, tmp_path: Path) -> None:
    path = tmp_path / "big.pkl"
    zoblib.dump({"x": np.arange(1_000_000.0)}, path)
    loaded = zoblib.load(path, mmap_mode=mmap_mode, safe=True)["x"]
    assert isinstance(loaded, np.memmap) == (mmap_mode is not None)
    assert float(loaded[-1]) == 999_999.0


def test_a_custom_class_is_refused_with_the_call_that_allows_it(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    zoblib.dump({"model": Custom(3), "x": np.arange(3)}, path)
    name = f"{Custom.__module__}.Custom"
    with pytest.raises(zoblib.UntrustedContentError) as refused:
        zoblib.load(path, safe=True)
    expected_call = f"zoblib.load({str(path)!r}, safe=True, trusted=[{name!r}])"
    assert refused.value.untrusted == (name,)
    assert refused.value.allow_call == expected_call
    assert expected_call in str(refused.value) and str(path) in str(refused.value)
    assert isinstance(refused.value, zoblib.ArchiveError) and isinstance(refused.value, ValueError)
    assert zoblib.load(path, safe=True, trusted=[name])["model"].value == 3
    assert zoblib.load(path, safe=True, trusted=[Custom])["model"].value == 3
    assert zoblib.load(path)["model"].value == 3  # the default is joblib's full pickle


def test_a_trusted_object_must_be_the_very_object_named(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    zoblib.dump(Custom(1), path)
    impostor = type("Custom", (), {"__module__": Custom.__module__})
    with pytest.raises(zoblib.UntrustedContentError, match="trusted="):
        zoblib.load(path, safe=True, trusted=[impostor])


def test_trusted_needs_safe_loading(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    zoblib.dump(1, path)
    with pytest.raises(ValueError, match="safe=True"):
        zoblib.load(path, safe=False, trusted=["a.b"])


def test_every_refused_global_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    zoblib.dump([Custom(1), print, os.getcwd], path)
    report = zoblib.audit(path)
    assert report.untrusted == tuple(
        sorted(["builtins.print", f"{Custom.__module__}.Custom", "posix.getcwd"])
    )
    assert set(report.untrusted) <= set(report.globals)
    assert report.globals == tuple(sorted(set(report.globals)))


def test_set_safe_load_switches_the_default(tmp_path: Path) -> None:
    path = tmp_path / "m.pkl"
    zoblib.dump(Custom(1), path)
    previous = zoblib.set_safe_load(True)
    try:
        with pytest.raises(zoblib.UntrustedContentError):
            zoblib.load(path)
        assert zoblib.load(path, safe=False).value == 1  # an explicit safe= wins
    finally:
        zoblib.set_safe_load(previous)
    assert zoblib.load(path).value == 1


def test_joblib_files_load_safely(tmp_path: Path) -> None:
    import joblib

    path = tmp_path / "j.pkl"
    joblib.dump({"x": np.arange(5), "o": np.array([1, "a"], dtype=object)}, path)
    loaded = zoblib.load(path, safe=True)
    assert loaded["x"].tolist() == [0, 1, 2, 3, 4] and loaded["o"].tolist() == [1, "a"]
    joblib.dump({"x": np.arange(5), "bad": [Custom(1)]}, path)
    with pytest.raises(zoblib.UntrustedContentError, match="Custom"):
        zoblib.load(path, safe=True)


def _run(code: str, cwd: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd), **environment}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_environment_switch_and_memory_trusting_its_cache(tmp_path: Path) -> None:
    (tmp_path / "userlib.py").write_text(
        textwrap.dedent(
            """
            import pathlib

            class Model:
                def __init__(self, value):
                    self.value = value

            def fit(value):
                calls = pathlib.Path("calls")
                calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
                return Model(value)
            """
        )
    )
    fill = _run(
        """
        import zoblib, userlib
        memory = zoblib.Memory("cache", verbose=0)
        print(memory.cache(userlib.fit)(3).value)
        zoblib.dump(userlib.Model(1), "model.pkl")
        """,
        tmp_path,
    )
    assert fill.returncode == 0, fill.stderr
    hit = _run(
        """
        import zoblib, userlib
        memory = zoblib.Memory("cache", verbose=0)
        print(memory.cache(userlib.fit)(3).value)
        try:
            zoblib.load("model.pkl")
        except zoblib.UntrustedContentError as exc:
            print("refused", exc.untrusted)
        """,
        tmp_path,
        ZOBLIB_SAFE_LOAD="1",
    )
    assert hit.returncode == 0, hit.stderr
    assert hit.stdout.split("\n")[:2] == ["3", "refused ('userlib.Model',)"], hit.stdout + hit.stderr
    assert (tmp_path / "calls").read_text() == "x"  # the second call was a cache hit
