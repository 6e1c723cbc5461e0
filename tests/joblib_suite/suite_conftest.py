"""The conftest of the subprocess that runs joblib's tests (copied there as ``conftest.py``).

joblib keeps these fixtures in its repository's root ``conftest.py``, which its wheel does not
ship: they are restated here against the shim, i.e. against zoblib.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from joblib import Memory

#: joblib 1.6.0's ``ParallelBackendBase.MAX_NUM_THREADS_VARS``.
THREAD_LIMIT_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    """An independent, self-cleaning Memory (joblib's fixture of the same name)."""
    mem = Memory(location=tmp_path, verbose=0)
    yield mem
    mem.clear()


@pytest.fixture(autouse=True)
def avoid_env_var_leakage() -> Iterator[None]:
    """A test leaves the thread-limit variables as it found them (joblib: all unset)."""
    before = {name: os.environ.get(name) for name in THREAD_LIMIT_VARIABLES}
    yield
    after = {name: os.environ.get(name) for name in THREAD_LIMIT_VARIABLES}
    assert after == before, f"thread-limit variables leaked out of the test: {after} != {before}"
