"""A package named ``joblib`` made of zoblib: joblib's public names, each bound to zoblib's.

Used only by ``tests/joblib_suite``: joblib 1.6.0's own tests run against it in a subprocess,
with this package first on ``PYTHONPATH``. ``joblib.__all__`` of 1.6.0 is mapped name by name;
a name zoblib lacks is a :class:`~joblib._missing.MissingName` that fails when used. Nothing here
routes to the real joblib.
"""

# joblib's own import loads multiprocessing.util (through its loky), and scripts in its tests
# call mp.util.log_to_stderr() relying on that side effect.
import multiprocessing.util  # noqa: F401

from zoblib import (
    Logger,
    MemorizedResult,
    Memory,
    Parallel,
    ParallelBackendBase,
    PrintTime,
    StoreBackendBase,
    __version__,
    cpu_count,
    delayed,
    dump,
    effective_n_jobs,
    expires_after,
    hash,
    load,
    parallel_backend,
    parallel_config,
    register_compressor,
    register_parallel_backend,
    register_store_backend,
    wrap_non_picklable_objects,
)

__all__ = [
    "Logger",
    "MemorizedResult",
    "Memory",
    "Parallel",
    "ParallelBackendBase",
    "PrintTime",
    "StoreBackendBase",
    "__version__",
    "cpu_count",
    "delayed",
    "dump",
    "effective_n_jobs",
    "expires_after",
    "hash",
    "load",
    "parallel_backend",
    "parallel_config",
    "register_compressor",
    "register_parallel_backend",
    "register_store_backend",
    "wrap_non_picklable_objects",
]
