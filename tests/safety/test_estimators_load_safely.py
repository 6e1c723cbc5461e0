"""Every fitted scikit-learn estimator, dumped with zoblib, loads with ``safe=True`` and no trusted list.

The fitting is the benchmark's (``benchmarks/bench_safe_load.py``), so the test and the
measured share in the docs count the same estimators.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import zoblib

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_safe_load.py"


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_safe_load", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _refusals(
    bench: ModuleType, entries: Iterable[Any], folder: Path
) -> tuple[dict[str, str], int, list[str]]:
    """Dump and load back each fitted estimator of ``entries`` with ``safe=True``.

    Returns why each refused one was refused (by name), how many were fitted, and the names
    of those the benchmark skipped.
    """
    refused: dict[str, str] = {}
    fitted = 0
    skipped: list[str] = []
    for entry in entries:
        if entry.skipped is not None:
            skipped.append(entry.name)
            continue
        fitted += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded_safely, why = bench.zoblib_loads_safely(entry.estimator, str(folder))
        if not loaded_safely:
            refused[entry.name] = why
    return refused, fitted, skipped


def test_every_fitted_estimator_loads_safely(tmp_path: Path) -> None:
    bench = _benchmark()
    refused, fitted, skipped = _refusals(bench, bench.fitted_estimators(), tmp_path)
    assert refused == {}
    assert fitted >= 150  # scikit-learn 1.3+ has about 200 estimators; most fit with defaults
    assert len(skipped) < fitted


def test_a_loaded_forest_predicts_as_the_original(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    rng = np.random.RandomState(0)
    X, y = rng.randn(200, 5), rng.randint(0, 3, 200)
    for model in (
        RandomForestClassifier(n_estimators=5, random_state=0),
        HistGradientBoostingClassifier(max_iter=5),
    ):
        model.fit(X, y)
        path = tmp_path / "model.pkl"
        zoblib.dump(model, path)
        loaded = zoblib.load(path, safe=True)
        assert (loaded.predict_proba(X) == model.predict_proba(X)).all()


def test_meta_estimators_load_safely(tmp_path: Path) -> None:
    bench = _benchmark()
    refused, fitted, skipped = _refusals(bench, bench.fitted_meta_estimators(), tmp_path)
    assert skipped == []
    assert fitted >= 20
    # scipy.stats distributions are left out on purpose: their __setstate__ runs exec.
    assert set(refused) == {"RandomizedSearchCV"}
    assert "scipy.stats" in refused["RandomizedSearchCV"]
