"""The ``'sequential'`` backend: every task runs in the caller, one after the other."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, ClassVar

from zoblib.parallel.backends.base import A, ParallelBackendBase, R, warn_ignored_options


class SequentialBackend(ParallelBackendBase):
    """Run tasks in the calling thread: for debugging, or to switch parallelism off.

    ``Parallel`` runs calls with one effective job inline anyway; this backend makes that the
    choice whatever ``n_jobs`` says. Options of other backends are accepted and ignored (with
    a warning), as joblib's sequential backend does.
    """

    name: ClassVar[str] = "sequential"
    supports_sharedmem: ClassVar[bool] = True

    def __init__(self, **ignored: Any) -> None:
        warn_ignored_options(self.name, ignored)

    def effective_n_jobs(self, n_jobs: int) -> int:
        """Return 1: one task at a time, whatever was asked."""
        super().effective_n_jobs(n_jobs)  # still reject n_jobs=0 and non-integers
        return 1

    def start(self, n_jobs: int, worker_env: Mapping[str, str]) -> None:
        """Nothing to start."""

    def submit(self, function: Callable[[A], R], argument: A) -> Future[R]:
        """Run ``function(argument)`` now and return a finished future."""
        future: Future[R] = Future()
        try:
            future.set_result(function(argument))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def stop(self) -> None:
        """Nothing to stop."""

    def abort(self) -> None:
        """Nothing to abort: tasks are finished when submit returns."""
