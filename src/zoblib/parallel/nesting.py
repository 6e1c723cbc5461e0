"""Where a process pool may start: the rules that keep nested parallel loops from hanging.

A pool started from inside a worker of another pool, or from a thread of a ``Parallel`` call,
can deadlock or crash: a ``multiprocessing`` worker starting loky's pool waits forever, loky's
workers cannot host a ``multiprocessing`` pool, and forking from a thread copies locks held by
other threads. joblib runs such inner loops sequentially with a warning; so does zoblib, with
joblib's messages (see :func:`process_pool_refusal`).
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import warnings

from zoblib.errors import ZoblibWarning
from zoblib.parallel.config import worker_share

# Set in the worker processes of zoblib's 'multiprocessing' backend by their initializer.
_in_multiprocessing_worker = [False]


def mark_multiprocessing_worker() -> None:
    """Record that this process is a worker of zoblib's ``'multiprocessing'`` backend."""
    _in_multiprocessing_worker[0] = True


def in_multiprocessing_worker() -> bool:
    """Whether this process is a ``multiprocessing`` worker (zoblib's, or a daemonic one)."""
    return _in_multiprocessing_worker[0] or bool(multiprocessing.current_process().daemon)


def in_loky_worker() -> bool:
    """Whether this process is a worker of a loky pool (zoblib's loky, or joblib's copy)."""
    for module_name in ("loky.process_executor", "joblib.externals.loky.process_executor"):
        module = sys.modules.get(module_name)
        if module is not None and getattr(module, "_CURRENT_DEPTH", 0) > 0:
            return True
    return False


def in_worker_thread() -> bool:
    """Whether a task of a ``Parallel`` call runs here, in a thread other than the main one."""
    return worker_share() is not None and threading.current_thread() is not threading.main_thread()


def process_pool_refusal(backend: str) -> str | None:
    """Say why a pool of ``backend`` (``'loky'`` or ``'multiprocessing'``) must not start here.

    Returns
    -------
    str or None
        joblib's warning for the case, or None when the pool may start.
    """
    if backend == "loky":
        if in_multiprocessing_worker():
            return "Loky-backed parallel loops cannot be called in a multiprocessing, setting n_jobs=1"
        if in_worker_thread():
            return "Loky-backed parallel loops cannot be nested below threads, setting n_jobs=1"
        return None
    if in_multiprocessing_worker():
        return "Multiprocessing-backed parallel loops cannot be nested, setting n_jobs=1"
    if in_loky_worker():
        return "Multiprocessing-backed parallel loops cannot be nested, below loky, setting n_jobs=1"
    if in_worker_thread():
        return "Multiprocessing-backed parallel loops cannot be nested below threads, setting n_jobs=1"
    return None


def limit_nested_n_jobs(backend: str, n_jobs: int) -> int:
    """Return ``n_jobs``, or 1 with a warning where a pool of ``backend`` must not start."""
    if n_jobs == 1:
        return 1
    refusal = process_pool_refusal(backend)
    if refusal is None:
        return n_jobs
    warnings.warn(refusal, ZoblibWarning, stacklevel=4)
    return 1
