"""The joblib backend "zoblib": joblib's (and scikit-learn's) Parallel on zoblib's workers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from parallel_helpers import describe_array, exit_on, fail_on
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn_helpers import MarkedRidge, fits_seen, regression_data

import zoblib
from zoblib.errors import WorkerDiedError
from zoblib.parallel.config import worker_share


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    zoblib.register_joblib_backend()


def where_and_how(_: object = None) -> tuple[int, bool]:
    return os.getpid(), worker_share() is not None


def test_registration_adds_the_zoblib_backend_to_joblib() -> None:
    zoblib.register_joblib_backend()  # again: replaces, does not fail
    assert "zoblib" in joblib.parallel.BACKENDS


def test_joblib_tasks_run_in_zoblib_workers() -> None:
    with joblib.parallel_config(backend="zoblib", n_jobs=2):
        seen = joblib.Parallel()(joblib.delayed(where_and_how)(i) for i in range(20))
    assert all(in_zoblib for _, in_zoblib in seen)
    assert os.getpid() not in {pid for pid, _ in seen}
    # joblib's own loky does not run zoblib's worker code: the marker tells them apart.
    with joblib.parallel_config(backend="loky", n_jobs=2):
        assert not any(
            marked for _, marked in joblib.Parallel()(joblib.delayed(where_and_how)(i) for i in range(4))
        )


def test_grid_search_runs_in_zoblib_workers_with_the_sequential_results(tmp_path: Path) -> None:
    X, y = regression_data()
    grid = {"alpha": [0.1, 1.0, 10.0]}
    sequential = GridSearchCV(MarkedRidge(), grid, cv=3).fit(X, y)
    with joblib.parallel_config(backend="zoblib", n_jobs=2):
        parallel = GridSearchCV(MarkedRidge(log_dir=str(tmp_path)), grid, cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(
        parallel.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )
    assert parallel.best_params_ == sequential.best_params_
    fits = fits_seen(str(tmp_path))
    in_workers = [(pid, runner) for pid, runner in fits if pid != os.getpid()]
    assert len(in_workers) == 9  # 3 candidates x 3 folds; the refit runs in this process
    assert {runner for _, runner in in_workers} == {"zoblib"}


def test_cross_val_score_runs_in_zoblib_workers_with_the_sequential_results(tmp_path: Path) -> None:
    X, y = regression_data()
    expected = cross_val_score(MarkedRidge(alpha=0.5), X, y, cv=4)
    with joblib.parallel_config(backend="zoblib"):
        scores = cross_val_score(MarkedRidge(alpha=0.5, log_dir=str(tmp_path)), X, y, cv=4, n_jobs=2)
    np.testing.assert_array_equal(scores, expected)
    fits = fits_seen(str(tmp_path))
    assert len(fits) == 4
    assert all(pid != os.getpid() and runner == "zoblib" for pid, runner in fits)


def test_big_arrays_reach_the_workers_by_reference() -> None:
    big = np.arange(2**18, dtype=np.float64)  # 2 MiB, over the 1M threshold
    with joblib.parallel_config(backend="zoblib", n_jobs=2):
        seen: list[dict[str, Any]] = joblib.Parallel()(joblib.delayed(describe_array)(big) for _ in range(2))
    for view in seen:
        assert issubclass(view["type"], np.memmap)
        assert "zoblib_parallel_" in view["filename"]  # zoblib's call folder, not joblib's
        assert view["sum"] == float(big.sum())


def test_task_errors_carry_zoblibs_message() -> None:
    block = joblib.parallel_config(backend="zoblib", n_jobs=2)
    with block, pytest.raises(ValueError, match="bad value 3") as caught:
        joblib.Parallel()(joblib.delayed(fail_on)(i, 3) for i in range(6))
    notes = "".join(getattr(caught.value, "__notes__", []))
    assert "(fail_on) in worker process" in notes
    assert "the traceback in the worker" in notes


def test_a_dead_worker_is_a_worker_died_error_and_the_next_call_works() -> None:
    with joblib.parallel_config(backend="zoblib", n_jobs=2):
        with pytest.raises(WorkerDiedError, match="exited with status 1"):
            joblib.Parallel(batch_size=1)(joblib.delayed(exit_on)(i, 1) for i in range(4))
        assert joblib.Parallel()(joblib.delayed(abs)(-i) for i in range(4)) == [0, 1, 2, 3]


def test_one_job_runs_in_this_process() -> None:
    with joblib.parallel_config(backend="zoblib", n_jobs=1):
        assert (
            joblib.Parallel()(joblib.delayed(where_and_how)(i) for i in range(2))
            == [(os.getpid(), False)] * 2
        )
