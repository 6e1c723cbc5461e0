"""The ``'multiprocessing'`` backend: the standard library's process pool."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

from zoblib._processes import exit_when_process_ends
from zoblib.errors import WorkerDiedError
from zoblib.parallel.backends.base import A, ParallelBackendBase, R, exit_codes_of, worker_died
from zoblib.parallel.nesting import limit_nested_n_jobs, mark_multiprocessing_worker


def _start_worker(
    env: Mapping[str, str],
    parent_pid: int,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
) -> None:
    os.environ.update(env)
    mark_multiprocessing_worker()  # so that a loky pool is not started in here (it would hang)
    # The pool's own threads notice a dead worker, but workers never notice a dead parent:
    # each holds both ends of the call queue's pipe, so no EOF comes, and the fork server
    # lives as long as any worker holds its "alive" pipe. A SIGKILLed parent would leave them
    # all behind (joblib's loky watches its parent; the standard library does not).
    exit_when_process_ends(parent_pid)
    if initializer is not None:
        initializer(*initargs)


class MultiprocessingBackend(ParallelBackendBase):
    """Run tasks in a :class:`concurrent.futures.ProcessPoolExecutor`.

    Workers are started with ``'forkserver'`` where the platform has it (``'spawn'``
    elsewhere): forking a parent that runs threads can deadlock. The pool lives for one call,
    or for a ``with Parallel(...)`` block. ``worker_env`` is set when a worker starts, which
    limits BLAS/OpenMP threads only for libraries the worker had not loaded yet. Workers end
    soon after the process that started them dies, however it dies (``SIGKILL`` included);
    the fork server then ends too.

    Inside another ``multiprocessing`` or loky worker, or from a thread of another
    ``Parallel`` call, it runs the tasks in the caller with a warning instead (see
    :mod:`zoblib.parallel.nesting`).

    Parameters
    ----------
    start_method
        A :mod:`multiprocessing` start method, to override the choice above.
    context
        A :mod:`multiprocessing` context (``multiprocessing.get_context('spawn')``), as joblib
        takes; it wins over ``start_method``.
    initializer, initargs
        ``initializer(*initargs)`` runs once in each worker process when it starts; both are
        pickled with the standard :mod:`pickle` (a function importable by name).
    maxtasksperchild
        Replace a worker after it ran this many batches (None: never).

    Raises
    ------
    TypeError
        For any other option, as joblib's ``multiprocessing.Pool`` raises.
    """

    name: ClassVar[str] = "multiprocessing"
    supports_shared_folder: ClassVar[bool] = True
    supports_abort_running: ClassVar[bool] = True

    def __init__(
        self,
        start_method: str | None = None,
        *,
        context: multiprocessing.context.BaseContext | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        maxtasksperchild: int | None = None,
    ) -> None:
        if context is not None:
            start_method = context.get_start_method()
        elif start_method is None:
            methods = multiprocessing.get_all_start_methods()
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        self.start_method = start_method
        self.context = context or multiprocessing.get_context(start_method)
        self.initializer = initializer
        self.initargs = tuple(initargs)
        self.maxtasksperchild = maxtasksperchild
        self._executor: ProcessPoolExecutor | None = None
        self._n_jobs = 0
        self._processes: dict[int, Any] = {}

    def with_options(self, options: Mapping[str, Any]) -> MultiprocessingBackend:
        """Return a multiprocessing backend with these options replacing this one's."""
        if not options:
            return self
        current = {
            "context": self.context,
            "initializer": self.initializer,
            "initargs": self.initargs,
            "maxtasksperchild": self.maxtasksperchild,
        }
        if "start_method" in options:
            current.pop("context")
        return MultiprocessingBackend(**{**current, **options})

    def effective_n_jobs(self, n_jobs: int) -> int:
        """Count as the base class does, but 1 (with a warning) where a pool must not start."""
        return limit_nested_n_jobs(self.name, super().effective_n_jobs(n_jobs))

    def start(self, n_jobs: int, worker_env: Mapping[str, str]) -> None:
        """Start a pool of ``n_jobs`` processes, or keep the running one if it has that size."""
        if self._executor is not None and self._n_jobs == n_jobs:
            return
        self.stop()
        self._executor = ProcessPoolExecutor(
            n_jobs,
            mp_context=self.context,
            initializer=_start_worker,
            initargs=(dict(worker_env), os.getpid(), self.initializer, self.initargs),
            max_tasks_per_child=self.maxtasksperchild,
        )
        self._n_jobs = n_jobs

    def submit(self, function: Callable[[A], R], argument: A) -> Future[R]:
        """Send ``function(argument)`` to a worker process."""
        if self._executor is None:
            raise RuntimeError("MultiprocessingBackend.submit called before start")
        future = self._executor.submit(function, argument)
        # Kept to read exit codes should a worker die; the executor does not report them.
        self._processes = dict(getattr(self._executor, "_processes", None) or {})
        return future

    def stop(self) -> None:
        """Wait for the workers to finish and end them."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def abort(self) -> None:
        """Kill the workers (running tasks included)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = dict(getattr(executor, "_processes", None) or {})
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes.values():
            if process.is_alive():
                process.kill()
        for process in processes.values():
            process.join(timeout=5)

    def worker_failure(self, error: BaseException) -> WorkerDiedError | None:
        """Translate ``BrokenProcessPool`` into :class:`~zoblib.WorkerDiedError`."""
        if not isinstance(error, BrokenProcessPool):
            return None
        executor, self._executor = self._executor, None
        if executor is not None:
            # Let the pool's own thread finish reaping the workers first: reading an exit code
            # while it does races with it (and with forkserver, one reader then sees 255).
            executor.shutdown(wait=True, cancel_futures=True)
        return worker_died(self.name, exit_codes_of(self._processes))
