"""``Parallel`` and ``delayed``, joblib's API, with big numpy arrays passed by reference.

The public names are re-exported by :mod:`zoblib`.
"""

from __future__ import annotations

from zoblib.parallel.backends.base import ParallelBackendBase
from zoblib.parallel.cloudpickle_wrapper import wrap_non_picklable_objects
from zoblib.parallel.config import parallel_backend, parallel_config
from zoblib.parallel.cpu import cpu_count
from zoblib.parallel.delayed import delayed
from zoblib.parallel.joblib_bridge import register_joblib_backend
from zoblib.parallel.parallel import Parallel, effective_n_jobs
from zoblib.parallel.registry import BACKENDS, register_parallel_backend

__all__ = [
    "BACKENDS",
    "Parallel",
    "ParallelBackendBase",
    "cpu_count",
    "delayed",
    "effective_n_jobs",
    "parallel_backend",
    "parallel_config",
    "register_joblib_backend",
    "register_parallel_backend",
    "wrap_non_picklable_objects",
]
