"""The environment that caps BLAS, OpenMP and kin in worker processes (oversubscription guard).

Each of ``n`` workers may use ``max(cpus // n, 1)`` threads by default, unless the caller set a
variable itself; an explicit ``inner_max_num_threads`` wins over the caller's variables, as
joblib documents.
"""

from __future__ import annotations

import os

#: Environment variables that cap the thread pools of BLAS, OpenMP, numba and numexpr in
#: workers (joblib's list).
THREAD_LIMIT_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
#: Lets the TBB schedulers of several workers coordinate instead of oversubscribing.
TBB_IPC_VARIABLE = "ENABLE_IPC"


def thread_limit_env(cpus_per_worker: int, inner_max_num_threads: int | None) -> dict[str, str]:
    """Return the variables to set in new worker processes.

    Parameters
    ----------
    cpus_per_worker
        The default limit (the CPUs divided by the number of workers, at least 1).
    inner_max_num_threads
        An explicit limit, set even where the caller's environment has the variable.

    Examples
    --------
    >>> thread_limit_env(2, 1)["OMP_NUM_THREADS"]
    '1'
    """
    if inner_max_num_threads is not None:
        env = dict.fromkeys(THREAD_LIMIT_VARIABLES, str(inner_max_num_threads))
    else:
        limit = str(max(cpus_per_worker, 1))
        env = {name: limit for name in THREAD_LIMIT_VARIABLES if name not in os.environ}
    if TBB_IPC_VARIABLE not in os.environ:
        env[TBB_IPC_VARIABLE] = "1"
    return env
