"""The ``'loky'`` backend (the default): robust worker processes, reused across calls."""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

import loky
from loky.process_executor import TerminatedWorkerError

from zoblib.errors import WorkerDiedError
from zoblib.parallel.backends.base import (
    A,
    ParallelBackendBase,
    R,
    exit_codes_of,
    warn_ignored_options,
    worker_died,
)
from zoblib.parallel.nesting import limit_nested_n_jobs

#: Seconds an idle worker waits for new tasks before it exits.
IDLE_WORKER_TIMEOUT = 300.0

_EXIT_CODE = re.compile(r"\w+\((-?\d+)\)")
# Every pool handed out (loky keeps one per thread), so that shutdown_workers finds them all.
_pools: weakref.WeakSet[Any] = weakref.WeakSet()

# The threads one of whose calls holds the thread's reusable pool now. A second call while one
# holds it (an unfinished return_as='generator' call) gets a pool of its own: asking loky for
# the reusable pool again could resize or replace it under the first call, and the first
# call's abort (its generator dropped) kills the reusable pool's workers, which must not take
# the second call's tasks with them (joblib's second call fails so).
_reusable_holders: set[int] = set()
_holders_lock = threading.Lock()


class LokyBackend(ParallelBackendBase):
    """Run tasks in loky's reusable pool of worker processes.

    Workers start once (without fork: safe with threads and any library state), stay alive
    between calls for ``idle_worker_timeout`` seconds, and a worker that dies is detected at
    once; the pool is then replaced on the next call.

    Inside a ``multiprocessing`` worker, or from a thread of another ``Parallel`` call, it runs
    the tasks in the caller with a warning instead (see :mod:`zoblib.parallel.nesting`).

    Parameters
    ----------
    idle_worker_timeout
        Seconds an idle worker waits for new tasks before it exits.
    initializer, initargs
        ``initializer(*initargs)`` runs once in each worker process when it starts. Pools are
        reused only by calls with the same initializer and arguments.
    **ignored
        Other options joblib's loky backend accepts and ignores: ignored, with a warning.
    """

    name: ClassVar[str] = "loky"
    supports_shared_folder: ClassVar[bool] = True
    supports_abort_running: ClassVar[bool] = True
    supports_worker_env: ClassVar[bool] = True

    def __init__(
        self,
        idle_worker_timeout: float = IDLE_WORKER_TIMEOUT,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        **ignored: Any,
    ) -> None:
        if "timeout" in ignored:
            raise ValueError(
                "The 'timeout' parameter is not supported by the LokyBackend. Please use the "
                "`idle_worker_timeout` parameter instead (the timeout of tasks is Parallel's "
                "own timeout=)."
            )
        warn_ignored_options(self.name, ignored)
        self.idle_worker_timeout = idle_worker_timeout
        self.initializer = initializer
        self.initargs = tuple(initargs)
        self._executor: Any = None
        self._processes: dict[int, Any] = {}
        self._settings: tuple[int, dict[str, str]] = (1, {})
        # The thread whose reusable pool this backend holds, or None (no pool, or its own).
        self._holding_thread: int | None = None

    def with_options(self, options: Mapping[str, Any]) -> LokyBackend:
        """Return a loky backend with these options replacing this one's."""
        if not options:
            return self
        current = {
            "idle_worker_timeout": self.idle_worker_timeout,
            "initializer": self.initializer,
            "initargs": self.initargs,
        }
        return LokyBackend(**{**current, **options})

    def effective_n_jobs(self, n_jobs: int) -> int:
        """Count as the base class does, but 1 (with a warning) where a pool must not start."""
        return limit_nested_n_jobs(self.name, super().effective_n_jobs(n_jobs))

    def start(self, n_jobs: int, worker_env: Mapping[str, str]) -> None:
        """Get loky's reusable pool with ``n_jobs`` workers (a new one if the environment changed).

        While another call of this thread holds the reusable pool (an unfinished generator),
        the call gets a pool of its own instead, shut down when the call ends.
        """
        settings = (n_jobs, dict(worker_env))
        if self._executor is not None and settings == self._settings:
            return  # started already (a ``with Parallel(...)`` block)
        self._release()
        self._settings = settings
        thread = threading.get_ident()
        with _holders_lock:
            if thread not in _reusable_holders:
                _reusable_holders.add(thread)
                self._holding_thread = thread
        try:
            self._executor = self._new_pool()
        except BaseException:
            self._release()
            raise

    def _new_pool(self) -> Any:
        n_jobs, env = self._settings
        options = {
            "max_workers": n_jobs,
            "timeout": self.idle_worker_timeout,
            "env": env,
            "initializer": self.initializer,
            "initargs": self.initargs,
        }
        if self._holding_thread is not None:
            pool = loky.get_reusable_executor(**options)
        else:
            pool = loky.ProcessPoolExecutor(**options)
        _pools.add(pool)
        return pool

    def _release(self, *, kill_workers: bool = False) -> None:
        """Let go of the pool: a pool of its own is shut down, the reusable one is kept."""
        executor, self._executor = self._executor, None
        if self._holding_thread is None:
            if executor is not None:
                executor.shutdown(wait=True, kill_workers=kill_workers)
            return
        with _holders_lock:
            _reusable_holders.discard(self._holding_thread)
            self._holding_thread = None
        if executor is not None and kill_workers:
            executor.shutdown(wait=True, kill_workers=True)

    def submit(self, function: Callable[[A], R], argument: A) -> Future[R]:
        """Send ``function(argument)`` to a worker process."""
        if self._executor is None:
            raise RuntimeError("LokyBackend.submit called before start")
        try:
            future: Future[R] = self._executor.submit(function, argument)
        except BrokenProcessPool:
            # A worker of an earlier call died and loky flagged the pool broken only after
            # handing it out again: take a fresh pool, once.
            self._executor = self._new_pool()
            future = self._executor.submit(function, argument)
        # Kept to read exit codes should a worker die (loky only prints them in a message).
        self._processes = dict(getattr(self._executor, "_processes", {}))
        return future

    def stop(self) -> None:
        """Leave the workers running for the next call; they exit when idle long enough."""
        self._release()

    def abort(self) -> None:
        """Kill the workers (running tasks included); the next call starts new ones."""
        self._release(kill_workers=True)

    def worker_failure(self, error: BaseException) -> WorkerDiedError | None:
        """Translate loky's ``TerminatedWorkerError`` into :class:`~zoblib.WorkerDiedError`."""
        if not isinstance(error, TerminatedWorkerError):
            return None  # other broken-pool errors (a task that failed to unpickle) say why
        codes = tuple(int(code) for code in _EXIT_CODE.findall(str(error)))
        # Settle the broken pool now, so that the next call does not get it back.
        self._release(kill_workers=True)
        return worker_died(self.name, codes or exit_codes_of(self._processes))


def shutdown_workers() -> None:
    """Stop loky's reusable worker processes now instead of when they are idle long enough.

    Examples
    --------
    >>> from zoblib.parallel.backends.loky import shutdown_workers
    >>> shutdown_workers()
    """
    for pool in list(_pools):
        pool.shutdown(wait=True, kill_workers=True)
    _pools.clear()
