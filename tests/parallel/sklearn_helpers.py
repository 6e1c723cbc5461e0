"""scikit-learn estimators for the joblib bridge tests: importable by name in worker processes."""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np
from sklearn.linear_model import Ridge

from zoblib.parallel.config import worker_share


class MarkedRidge(Ridge):  # type: ignore[misc]
    """A ridge regression that leaves a file per fit: the process, and whether zoblib ran it."""

    def __init__(self, alpha: float = 1.0, log_dir: str = "") -> None:
        super().__init__(alpha=alpha)
        self.log_dir = log_dir

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MarkedRidge:
        if self.log_dir:
            # worker_share() is set only while zoblib's worker code runs a task.
            runner = "zoblib" if worker_share() is not None else "other"
            name = f"{os.getpid()}-{runner}-{uuid.uuid4().hex}"
            with open(os.path.join(self.log_dir, name), "w"):
                pass
        super().fit(X, y, sample_weight)
        return self


def fits_seen(log_dir: str) -> list[tuple[int, str]]:
    """The ``(pid, runner)`` of every fit logged in ``log_dir``."""
    seen = []
    for name in os.listdir(log_dir):
        pid, runner, _ = name.split("-")
        seen.append((int(pid), runner))
    return seen


def regression_data(n_samples: int = 120, n_features: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_samples, n_features))
    y = X @ rng.standard_normal(n_features) + 0.1 * rng.standard_normal(n_samples)
    return X, y
