"""The ``'threading'`` backend: a pool of threads in the caller's process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

from zoblib.parallel.backends.base import A, ParallelBackendBase, R, warn_ignored_options


class ThreadingBackend(ParallelBackendBase):
    """Run tasks in threads: no pickling, shared objects, but the GIL limits pure-Python code.

    Best for tasks that release the GIL (numpy, I/O, compiled code) or that must share
    memory (``require='sharedmem'``). A running task cannot be stopped: after an error or a
    timeout, queued tasks are cancelled and running ones finish in the background.

    Parameters
    ----------
    **ignored
        Options of process backends (``initializer``...): joblib's threading backend accepts
        and ignores them; so does this one, with a warning.
    """

    name: ClassVar[str] = "threading"
    supports_sharedmem: ClassVar[bool] = True

    def __init__(self, **ignored: Any) -> None:
        warn_ignored_options(self.name, ignored)
        self._executor: ThreadPoolExecutor | None = None
        self._n_jobs = 0

    def start(self, n_jobs: int, worker_env: Mapping[str, str]) -> None:
        """Start a pool of ``n_jobs`` threads, or keep the running one if it has that size."""
        if self._executor is not None and self._n_jobs == n_jobs:
            return
        self.stop()
        self._executor = ThreadPoolExecutor(n_jobs, thread_name_prefix="zoblib-parallel")
        self._n_jobs = n_jobs

    def submit(self, function: Callable[[A], R], argument: A) -> Future[R]:
        """Run ``function(argument)`` in a thread of the pool."""
        if self._executor is None:
            raise RuntimeError("ThreadingBackend.submit called before start")
        return self._executor.submit(function, argument)

    def stop(self) -> None:
        """Wait for the threads to finish and end them."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def abort(self) -> None:
        """Cancel queued tasks; running ones cannot be interrupted and finish on their own."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
