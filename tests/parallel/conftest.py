"""Fixtures of the parallel tests: small pools, and no worker left running afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zoblib.parallel.backends.loky import shutdown_workers

PROCESS_BACKENDS = ["loky", "multiprocessing"]
ALL_BACKENDS = ["loky", "multiprocessing", "threading", "sequential"]


@pytest.fixture(scope="session", autouse=True)
def _stop_workers_at_the_end() -> Iterator[None]:
    yield
    shutdown_workers()


@pytest.fixture
def temp_root(tmp_path: Path) -> Path:
    """A temp_folder of the test's own, to look at what calls leave behind."""
    root = tmp_path / "parallel-temp"
    root.mkdir()
    return root
