"""Files written by the real joblib (the test extra's release), loaded by zoblib: every compressor
and level, every pickle protocol, every kind of array, compared with joblib's own load."""

from __future__ import annotations

import gzip
import io
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from joblib_helpers import COMPRESSORS, LEVELS, assert_alike, many_arrays, memmapped_input

import zoblib

COMPRESS_SETTINGS: list[Any] = [
    0,
    True,
    5,
    *COMPRESSORS,
    *((c, level) for c in COMPRESSORS for level in LEVELS),
]


@pytest.fixture(scope="module")
def value(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    value = many_arrays()
    value["memmap"] = memmapped_input(tmp_path_factory.mktemp("input") / "input.mmap")
    return value


def _load_both(path: Path, **options: Any) -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix
        return zoblib.load(path, **options), joblib.load(path, **options)


@pytest.mark.parametrize("compress", COMPRESS_SETTINGS, ids=str)
def test_every_compressor_and_level(tmp_path: Path, value: dict[str, Any], compress: Any) -> None:
    path = tmp_path / "data.joblib"
    joblib.dump(value, path, compress=compress)
    ours, theirs = _load_both(path)
    assert_alike(ours, theirs)
    assert type(ours["matrix"]) is np.matrix  # kept, where joblib on numpy 2 drops the subclass
    assert type(ours["memmap"]) is np.ndarray  # a plain array in memory, as joblib's
    assert ours["other-byte-order"].dtype.isnative  # ensure_native_byte_order="auto": True
    assert ours["structured-other-order"].dtype == theirs["structured-other-order"].dtype


@pytest.mark.parametrize("suffix", [".z", ".gz", ".bz2", ".xz", ".lzma", ".lz4"])
def test_compressor_picked_by_joblib_from_the_name(
    tmp_path: Path, value: dict[str, Any], suffix: str
) -> None:
    path = tmp_path / f"data.pkl{suffix}"
    joblib.dump(value, path)
    assert_alike(*_load_both(path))
    # Content, not name: the same bytes under a neutral name load the same.
    renamed = path.rename(tmp_path / "renamed.bin")
    assert_alike(*_load_both(renamed))


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_pickle_protocol(tmp_path: Path, value: dict[str, Any], protocol: int) -> None:
    path = tmp_path / "data.pkl"
    joblib.dump(value, path, protocol=protocol)
    assert_alike(*_load_both(path))
    assert_alike(*_load_both(path, mmap_mode="r"))


@pytest.mark.parametrize("native", [True, False])
def test_ensure_native_byte_order_as_joblib(tmp_path: Path, value: dict[str, Any], native: bool) -> None:
    path = tmp_path / "data.pkl"
    joblib.dump(value, path)
    ours, theirs = _load_both(path, ensure_native_byte_order=native)
    assert_alike(ours, theirs)
    for key in ("other-byte-order", "structured-other-order", "structured-mixed-orders"):
        assert ours[key].dtype == theirs[key].dtype, key
    assert ours["other-byte-order"].dtype.isnative is native


@pytest.mark.parametrize("value", [None, 3, "text", [1, {"a": (2, 3)}], {"nested": {"no": "arrays"}}])
@pytest.mark.parametrize("compress", [0, 3, "lz4"])
def test_objects_without_arrays(tmp_path: Path, value: Any, compress: Any) -> None:
    path = tmp_path / "plain.pkl"
    joblib.dump(value, path, compress=compress)
    assert zoblib.load(path) == value


def test_a_scikit_learn_model(tmp_path: Path) -> None:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = make_classification(n_samples=200, n_features=8, random_state=0)
    models = {
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(features, labels),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(features, labels),
    }
    for compress in (0, 3, ("lz4", 1)):
        path = tmp_path / "models.joblib"
        joblib.dump(models, path, compress=compress)
        loaded = zoblib.load(path)
        for name, model in models.items():
            assert type(loaded[name]) is type(model)
            np.testing.assert_array_equal(loaded[name].predict_proba(features), model.predict_proba(features))
    mapped = zoblib.load(_dumped(tmp_path, models), mmap_mode="r")
    np.testing.assert_array_equal(mapped["forest"].predict(features), models["forest"].predict(features))
    assert any(isinstance(tree.tree_.value, np.ndarray) for tree in mapped["forest"].estimators_)


def _dumped(tmp_path: Path, value: Any) -> Path:
    path = tmp_path / "uncompressed.joblib"
    joblib.dump(value, path)
    return path


def test_a_pandas_dataframe(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "int": np.arange(50),
            "float": np.linspace(0, 1, 50),
            "text": [f"row {i}" for i in range(50)],
            "category": pd.Categorical(["a", "b"] * 25),
            "when": pd.date_range("2026-01-01", periods=50, freq="h", tz="Europe/Paris"),
            "nullable": pd.array([1, None] * 25, dtype="Int64"),
        }
    )
    for compress in (0, 3, "xz"):
        path = tmp_path / "frame.joblib"
        joblib.dump({"frame": frame, "series": frame["float"]}, path, compress=compress)
        loaded = zoblib.load(path)
        pd.testing.assert_frame_equal(loaded["frame"], frame)
        pd.testing.assert_series_equal(loaded["series"], frame["float"])
    path = _dumped(tmp_path, frame)
    pd.testing.assert_frame_equal(zoblib.load(path, mmap_mode="r"), joblib.load(path, mmap_mode="r"))


def test_a_file_dumped_into_a_gzip_file_object(tmp_path: Path, value: dict[str, Any]) -> None:
    # joblib.dump(obj, GzipFile(...)) writes an uncompressed joblib pickle inside a gzip stream.
    path = tmp_path / "data.pkl.gz"
    with gzip.GzipFile(path, "wb") as file:
        joblib.dump(value, file)
    with gzip.GzipFile(path, "rb") as file:
        theirs = joblib.load(file)
    assert_alike(zoblib.load(path), theirs)
    with gzip.GzipFile(path, "rb") as file:
        assert_alike(zoblib.load(file), theirs)


def test_a_file_dumped_into_memory(value: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    joblib.dump(value, buffer)
    buffer.seek(0)
    theirs = joblib.load(buffer)
    assert_alike(zoblib.load(io.BytesIO(buffer.getvalue())), theirs)
