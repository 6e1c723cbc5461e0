"""Friction of safe loading: which fitted scikit-learn estimators load with no trusted list.

Every estimator of ``sklearn.utils.all_estimators()`` that can be built with default
parameters is fitted on a small dataset (the input its kind takes: a float matrix and class
labels, positive targets, text for vectorizers, dicts for DictVectorizer...), dumped with
zoblib and loaded with ``zoblib.load(path, safe=True)`` and no ``trusted=``; the same model is
saved with ``skops.io.dump`` and counted as loading without friction when
``skops.io.get_untrusted_types(file=...)`` is empty. Estimators that need constructor
arguments (meta-estimators) or that cannot be fitted on the small datasets are skipped and
counted; the meta-estimators are measured apart, built around small inner estimators.

Run: ``.venv/bin/python benchmarks/bench_safe_load.py`` (needs ``skops``: the ``bench`` extra).
This is a count, not a timing.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Estimators that take another input than a float matrix (fitted with that input).
TEXT = ["the cat sat", "a dog ran", "the dog sat", "a cat ran"] * 5


@dataclass(frozen=True)
class Fitted:
    """One estimator fitted, or the reason it was skipped."""

    name: str
    estimator: Any = None
    skipped: str | None = None


def _datasets() -> dict[str, Any]:
    rng = np.random.RandomState(0)
    features = np.abs(rng.randn(60, 4)) + 0.1
    return {
        "X": features,
        "classes": np.array([0, 1, 2] * 20),
        "targets": features @ np.array([1.0, 2.0, 0.5, 0.2]) + 0.1,
        "multi_targets": np.column_stack([features[:, 0], features[:, 1] * 2]),
        "wide": rng.randn(60, 4000),
    }


def _fit(name: str, estimator: Any, data: dict[str, Any]) -> Any:
    from sklearn.base import is_classifier, is_regressor

    X = data["X"]
    special = {
        "CountVectorizer": lambda: estimator.fit(TEXT),
        "TfidfVectorizer": lambda: estimator.fit(TEXT),
        "HashingVectorizer": lambda: estimator.fit(TEXT),
        "DictVectorizer": lambda: estimator.fit([{"a": 1.0, "b": 2.0}, {"a": 3.0, "c": 1.0}]),
        "FeatureHasher": lambda: estimator.fit([{"a": 1.0, "b": 2.0}, {"a": 3.0, "c": 1.0}]),
        "LabelEncoder": lambda: estimator.fit(data["classes"]),
        "LabelBinarizer": lambda: estimator.fit(data["classes"]),
        "MultiLabelBinarizer": lambda: estimator.fit([[1, 2], [3]]),
        "KernelCenterer": lambda: estimator.fit(X @ X.T),
        "IsotonicRegression": lambda: estimator.fit(X[:, 0], data["targets"]),
        # n_components='auto' needs thousands of features for 60 samples.
        "GaussianRandomProjection": lambda: estimator.fit(data["wide"]),
        "SparseRandomProjection": lambda: estimator.fit(data["wide"]),
    }
    if name in special:
        return special[name]()
    if name.startswith("MultiTask") or name in ("CCA", "PLSCanonical", "PLSRegression", "PLSSVD"):
        return estimator.fit(X, data["multi_targets"])
    if is_classifier(estimator):
        return estimator.fit(X, data["classes"])
    if is_regressor(estimator):
        return estimator.fit(X, data["targets"])
    try:
        return estimator.fit(X)
    except (TypeError, ValueError):  # transformers whose fit needs a y (feature selection)
        return estimator.fit(X, data["classes"])


def _meta_estimators() -> dict[str, Any]:
    """Meta-estimators (they need constructor arguments), each around small inner estimators."""
    from scipy.stats import loguniform
    from sklearn import (
        compose,
        ensemble,
        feature_selection,
        frozen,
        model_selection,
        multiclass,
        multioutput,
        pipeline,
        semi_supervised,
    )
    from sklearn.decomposition import PCA, SparseCoder
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    def classifier() -> Any:
        return LogisticRegression(max_iter=200)

    return {
        "Pipeline": lambda: pipeline.Pipeline([("scale", StandardScaler()), ("model", classifier())]),
        "FeatureUnion": lambda: pipeline.FeatureUnion([("pca", PCA(2)), ("scale", StandardScaler())]),
        "ColumnTransformer": lambda: compose.ColumnTransformer(
            [("scale", StandardScaler(), [0, 1])], remainder="passthrough"
        ),
        "GridSearchCV": lambda: model_selection.GridSearchCV(classifier(), {"C": [0.1, 1.0]}, cv=2),
        "RandomizedSearchCV": lambda: model_selection.RandomizedSearchCV(
            classifier(), {"C": loguniform(0.1, 1.0)}, n_iter=2, cv=2, random_state=0
        ),
        "VotingClassifier": lambda: ensemble.VotingClassifier(
            [("lr", classifier()), ("tree", DecisionTreeClassifier())]
        ),
        "VotingRegressor": lambda: ensemble.VotingRegressor([("ridge", Ridge())]),
        "StackingClassifier": lambda: ensemble.StackingClassifier(
            [("lr", classifier()), ("tree", DecisionTreeClassifier())], cv=2
        ),
        "StackingRegressor": lambda: ensemble.StackingRegressor([("ridge", Ridge())], cv=2),
        "OneVsRestClassifier": lambda: multiclass.OneVsRestClassifier(classifier()),
        "OneVsOneClassifier": lambda: multiclass.OneVsOneClassifier(classifier()),
        "OutputCodeClassifier": lambda: multiclass.OutputCodeClassifier(classifier(), random_state=0),
        "ClassifierChain": lambda: multioutput.ClassifierChain(classifier()),
        "RegressorChain": lambda: multioutput.RegressorChain(Ridge()),
        "MultiOutputClassifier": lambda: multioutput.MultiOutputClassifier(classifier()),
        "MultiOutputRegressor": lambda: multioutput.MultiOutputRegressor(Ridge()),
        "RFE": lambda: feature_selection.RFE(classifier(), n_features_to_select=2),
        "RFECV": lambda: feature_selection.RFECV(classifier(), cv=2),
        "SelectFromModel": lambda: feature_selection.SelectFromModel(classifier()),
        "SequentialFeatureSelector": lambda: feature_selection.SequentialFeatureSelector(
            classifier(), n_features_to_select=2, cv=2
        ),
        "SparseCoder": lambda: SparseCoder(dictionary=np.eye(4)[:2]),
        "FixedThresholdClassifier": lambda: model_selection.FixedThresholdClassifier(classifier()),
        "TunedThresholdClassifierCV": lambda: model_selection.TunedThresholdClassifierCV(classifier(), cv=2),
        "FrozenEstimator": lambda: frozen.FrozenEstimator(classifier().fit(*_binary())),
        "SelfTrainingClassifier": lambda: semi_supervised.SelfTrainingClassifier(classifier()),
    }


def _binary() -> tuple[Any, Any]:
    data = _datasets()
    return data["X"], data["classes"] % 2


def _fit_meta(name: str, estimator: Any, data: dict[str, Any]) -> Any:
    X = data["X"]
    if name in ("ClassifierChain", "MultiOutputClassifier"):
        return estimator.fit(X, np.column_stack([data["classes"] % 2, data["classes"] // 2]))
    if name in ("RegressorChain", "MultiOutputRegressor"):
        return estimator.fit(X, data["multi_targets"])
    if name in ("FixedThresholdClassifier", "TunedThresholdClassifierCV", "FrozenEstimator"):
        return estimator.fit(*_binary())
    if name in ("FeatureUnion", "ColumnTransformer", "SparseCoder"):
        return estimator.fit(X)
    if name in ("VotingRegressor", "StackingRegressor"):
        return estimator.fit(X, data["targets"])
    return estimator.fit(X, data["classes"])


def fitted_meta_estimators(names: list[str] | None = None) -> Iterator[Fitted]:
    """The meta-estimators of ``all_estimators()``, built around small inner estimators."""
    from sklearn.utils import all_estimators

    data = _datasets()
    factories = _meta_estimators()
    for name, _ in all_estimators():
        if name not in factories or (names is not None and name not in names):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield Fitted(name, _fit_meta(name, factories[name](), data))
        except Exception as exc:
            yield Fitted(name, skipped=f"cannot be fitted ({type(exc).__name__}: {exc})"[:120])


def fitted_estimators(names: list[str] | None = None) -> Iterator[Fitted]:
    """Every estimator of ``all_estimators()`` (or those named), fitted or skipped."""
    from sklearn.utils import all_estimators

    data = _datasets()
    for name, cls in all_estimators():
        if names is not None and name not in names:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # deprecated estimators still count
                estimator = cls()
        except TypeError:
            yield Fitted(name, skipped="needs constructor arguments (measured apart)")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield Fitted(name, _fit(name, estimator, data))
        except Exception as exc:
            yield Fitted(name, skipped=f"cannot be fitted on the small datasets ({type(exc).__name__})")


def zoblib_loads_safely(estimator: Any, folder: str) -> tuple[bool, str]:
    """Whether the estimator, dumped with zoblib, loads with ``safe=True`` and no trusted list."""
    import zoblib

    path = os.path.join(folder, "model.pkl")
    zoblib.dump(estimator, path)
    try:
        loaded = zoblib.load(path, safe=True)
    except zoblib.UntrustedContentError as exc:
        return False, ", ".join(exc.untrusted)
    return type(loaded) is type(estimator), ""


def skops_loads_safely(estimator: Any, folder: str) -> tuple[bool, str]:
    """Whether skops persists the estimator with no untrusted types to confirm."""
    import skops.io

    path = os.path.join(folder, "model.skops")
    try:
        skops.io.dump(estimator, path)
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:
        return False, f"cannot persist ({type(exc).__name__})"
    return not untrusted, ", ".join(untrusted)


@dataclass
class Tally:
    """One group's results: a row per estimator, and the skipped ones."""

    title: str
    rows: list[tuple[str, bool, bool | None, str]]
    skipped: list[Fitted]


def measure(entries: Iterator[Fitted], title: str, folder: str, has_skops: bool) -> Tally:
    """Dump and load (zoblib and skops) every fitted entry."""
    tally = Tally(title, [], [])
    for fitted in entries:
        if fitted.skipped is not None:
            tally.skipped.append(fitted)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zoblib_ok, zoblib_why = zoblib_loads_safely(fitted.estimator, folder)
            skops_ok, skops_why = skops_loads_safely(fitted.estimator, folder) if has_skops else (None, "")
        tally.rows.append((fitted.name, zoblib_ok, skops_ok, zoblib_why or skops_why))
    return tally


def report(tally: Tally, has_skops: bool) -> None:
    print(f"\n## {tally.title}")
    print(f"{'estimator':<36} {'zoblib safe':>11} {'skops':>6}  untrusted (zoblib's, else skops')")
    for name, zoblib_ok, skops_ok, why in tally.rows:
        skops_cell = "-" if skops_ok is None else ("yes" if skops_ok else "no")
        print(f"{name:<36} {'yes' if zoblib_ok else 'no':>11} {skops_cell:>6}  {why[:70]}")
    total = len(tally.rows)
    zoblib_count = sum(ok for _, ok, _, _ in tally.rows)
    skops_count = sum(bool(ok) for _, _, ok, _ in tally.rows)
    print(f"fitted and dumped: {total}; skipped: {len(tally.skipped)}")
    for fitted in tally.skipped:
        print(f"  skipped {fitted.name}: {fitted.skipped}")
    share = 100 * zoblib_count / max(total, 1)
    print(f"zoblib.load(safe=True), no trusted list: {zoblib_count}/{total} ({share:.1f}%)")
    if has_skops:
        share = 100 * skops_count / max(total, 1)
        print(f"skops.io, no untrusted types:          {skops_count}/{total} ({share:.1f}%)")


def main() -> int:
    import sklearn

    try:
        import skops

        has_skops, skops_version = True, skops.__version__
    except ImportError:
        has_skops, skops_version = False, "not installed"
    print(f"scikit-learn {sklearn.__version__}, skops {skops_version}")
    with tempfile.TemporaryDirectory(prefix="zoblib-bench-safe-") as folder:
        plain = measure(fitted_estimators(), "estimators with default parameters", folder, has_skops)
        meta = measure(
            fitted_meta_estimators(), "meta-estimators, around small inner estimators", folder, has_skops
        )
    for tally in (plain, meta):
        report(tally, has_skops)
    return 0 if all(ok for _, ok, _, _ in plain.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
