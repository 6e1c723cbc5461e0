"""``joblib.parallel``: the public functions and classes bound to zoblib's."""

from joblib._missing import JOBLIB_PRIVATE, MissingName
from joblib._multiprocessing_helpers import mp
from zoblib.parallel import (
    BACKENDS,
    Parallel,
    ParallelBackendBase,
    cpu_count,
    delayed,
    effective_n_jobs,
    parallel_backend,
    parallel_config,
    register_parallel_backend,
)

__all__ = [
    "BACKENDS",
    "Parallel",
    "ParallelBackendBase",
    "cpu_count",
    "delayed",
    "effective_n_jobs",
    "mp",
    "parallel_backend",
    "parallel_config",
    "register_parallel_backend",
]

DEFAULT_BACKEND = MissingName("joblib.parallel.DEFAULT_BACKEND", JOBLIB_PRIVATE)
EXTERNAL_BACKENDS = MissingName("joblib.parallel.EXTERNAL_BACKENDS", JOBLIB_PRIVATE)
get_active_backend = MissingName("joblib.parallel.get_active_backend", JOBLIB_PRIVATE)
