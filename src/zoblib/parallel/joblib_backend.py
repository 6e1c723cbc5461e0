"""The joblib backend that runs joblib's batches on zoblib's workers (imports joblib).

joblib keeps what it does itself (batch sizing, ordering, timeouts, progress, its nested
configuration); zoblib does what happens between the processes, as for its own ``Parallel``:
the batch is pickled with big arrays by reference (:mod:`zoblib.parallel.pickling`), run by
:func:`~zoblib.parallel.worker.run_batch_remote` on a zoblib backend's workers, and its outcome
turned into results or into the task's exception with the worker's traceback
(:func:`~zoblib.parallel.run.task_error`). Registered by
:func:`zoblib.parallel.joblib_bridge.register_joblib_backend`.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from joblib.parallel import (
    AutoBatchingMixin,
    FallbackToBackend,
    SequentialBackend,
)
from joblib.parallel import (
    ParallelBackendBase as JoblibBackendBase,
)
from joblib.parallel import (
    parallel_config as joblib_parallel_config,
)

from zoblib.errors import ZoblibWarning
from zoblib.parallel import pickling
from zoblib.parallel.backends.base import ParallelBackendBase
from zoblib.parallel.config import (
    WorkerShare,
    array_store,
    available_cpus,
    get_active_config,
    worker_share,
)
from zoblib.parallel.delayed import Task
from zoblib.parallel.registry import make_backend
from zoblib.parallel.run import batch_outcome, pickle_batch, task_error, task_name
from zoblib.parallel.tempfolder import create_call_folder, remove_call_folder, temp_root
from zoblib.parallel.threadlimits import thread_limit_env
from zoblib.parallel.worker import WorkerSetup, run_batch_remote


def _notify(callback: Callable[[Any], None], future: Future[Any]) -> None:
    """Tell joblib a batch is done; from another thread when the batch failed.

    The pool's own thread runs done-callbacks, and translating a dead worker's error shuts
    the pool down, which joins that very thread: it would fail ("cannot join current thread").
    """
    if future.cancelled() or future.exception() is not None:
        threading.Thread(target=callback, args=(future,), name="zoblib-joblib-failure", daemon=True).start()
    else:
        callback(future)


class JoblibTask:
    """One task of a joblib batch, run under the configuration joblib gives nested calls.

    joblib's own workers run a batch inside ``parallel_config(backend=<nested backend>)``
    (threads one level down, then sequential): so does this wrapper, task by task, so that
    scikit-learn's inner ``Parallel`` calls behave as under joblib's loky.

    Parameters
    ----------
    function
        The task's function.
    nested
        ``(backend, n_jobs)`` as joblib's ``get_nested_backend`` returned them.
    """

    def __init__(self, function: Callable[..., Any], nested: tuple[Any, Any]) -> None:
        self.function = function
        self.nested = nested
        # Error messages name the task by its function, not by this wrapper.
        self.__qualname__ = getattr(function, "__qualname__", None) or repr(function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        backend, n_jobs = self.nested
        with joblib_parallel_config(backend=backend, n_jobs=n_jobs):
            return self.function(*args, **kwargs)


class ZoblibJoblibBackend(AutoBatchingMixin, JoblibBackendBase):  # type: ignore[misc]
    """A joblib backend whose workers are those of a zoblib backend.

    Parameters
    ----------
    nesting_level, inner_max_num_threads
        As for joblib's backends (joblib passes them).
    zoblib_backend
        The zoblib backend whose workers run the tasks: a process or cluster backend's name
        (``'loky'``, ``'multiprocessing'``, ``'dask'``...) or object. Default: the backend of
        the enclosing ``zoblib.parallel_config`` block when it runs tasks outside this process
        (enter that block first: joblib makes this backend when its own block starts), else
        ``'loky'``.
    **options
        Options of that backend (``initializer``, ``initargs``...).
    """

    supports_retrieve_callback = True
    supports_inner_max_num_threads = True
    supports_sharedmem = False
    uses_threads = False
    default_n_jobs = 1

    def __init__(
        self,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        zoblib_backend: str | ParallelBackendBase | None = None,
        **options: Any,
    ) -> None:
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads)
        backend = _choose_zoblib_backend(zoblib_backend, options)
        if backend.supports_sharedmem:
            raise ValueError(
                f"the joblib backend 'zoblib' runs tasks in zoblib's worker processes, but "
                f"zoblib_backend={backend.name!r} runs them in this process: use joblib's own "
                "'threading' backend for threads"
            )
        self.zoblib_backend = backend
        self._folder: str | None = None
        self._passing: pickling.ArrayPassing | None = None
        self._setup = WorkerSetup(share=WorkerShare(nesting_level=1, cpus=1))
        self._in_flight: dict[Future[Any], list[Task]] = {}
        self._lock = threading.Lock()

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """Count workers as the zoblib backend does (1 where its pool must not start)."""
        if n_jobs is None:
            return 1
        if n_jobs != 1 and self.nesting_level and not self.in_main_thread():
            # joblib's threads in a worker (nested calls): forking from them is not safe.
            warnings.warn(
                "zoblib-backed parallel loops cannot be nested below threads, setting n_jobs=1",
                ZoblibWarning,
                stacklevel=3,
            )
            return 1
        return self.zoblib_backend.effective_n_jobs(n_jobs)

    def configure(
        self,
        n_jobs: int = 1,
        parallel: Any = None,
        prefer: str | None = None,
        require: str | None = None,
        temp_folder: str | None = None,
        max_nbytes: int | None = None,
        mmap_mode: str | None = None,
        verbose: int = 0,
        context: Any = None,
        **options: Any,
    ) -> int:
        """Start the zoblib workers for a joblib call; return their number."""
        count = self.effective_n_jobs(n_jobs)
        if count == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        if options:  # joblib's Parallel(..., **backend_kwargs)
            self.zoblib_backend = self.zoblib_backend.with_options(options)
        self.parallel = parallel
        backend = self.zoblib_backend
        store = array_store(get_active_config())
        by_reference = (
            max_nbytes is not None
            and mmap_mode is not None
            and (store is not None or backend.supports_shared_folder)
        )
        if by_reference and self._passing is None:
            assert max_nbytes is not None and mmap_mode is not None
            if store is None:
                self._folder = create_call_folder(temp_root(temp_folder))
            self._passing = pickling.ArrayPassing(self._folder, max_nbytes, mmap_mode, store=store)
        outer = worker_share()
        cpus = max(1, available_cpus() // count)
        self._setup = WorkerSetup(
            share=WorkerShare(nesting_level=(0 if outer is None else outer.nesting_level) + 1, cpus=cpus),
            results_folder=self._folder,
            max_nbytes=max_nbytes if by_reference else None,
            results_store=store if by_reference else None,
        )
        explicit = self.inner_max_num_threads if backend.supports_worker_env else None
        backend.start(count, thread_limit_env(cpus, explicit))
        return count

    def submit(self, func: Any, callback: Callable[[Any], None] | None = None) -> Future[Any]:
        """Send a joblib batch (a ``BatchedCalls``) to a zoblib worker."""
        items = getattr(func, "items", None)
        if items is not None:
            nested = (func._backend, func._n_jobs)
            tasks: list[Task] = [(JoblibTask(f, nested), args, kwargs) for f, args, kwargs in items]
        else:
            tasks = [(func, (), {})]
        names = ", ".join(dict.fromkeys(task_name(task[0]) for task in tasks))
        what = f"a batch of {len(tasks)} joblib task(s) ({names})"
        payload = pickle_batch(self._setup, tasks, self._passing, self.zoblib_backend, what)
        future: Future[Any] = self.zoblib_backend.submit(run_batch_remote, payload)
        with self._lock:
            self._in_flight[future] = tasks
        if callback is not None:
            future.add_done_callback(functools.partial(_notify, callback))
        return future

    def retrieve_result_callback(self, future: Future[Any]) -> list[Any]:
        """Return the batch's results, or raise its task's exception (zoblib's message)."""
        with self._lock:
            tasks = self._in_flight.pop(future, [])
        outcome = batch_outcome(self.zoblib_backend, future)
        if outcome.failure is not None:
            raise task_error(0, tasks, outcome)
        return outcome.results

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """Stop the workers (running tasks included); restart them if joblib asks."""
        self.zoblib_backend.abort()
        self._release()
        if ensure_ready and self.parallel is not None:
            self.configure(
                n_jobs=self.parallel.n_jobs, parallel=self.parallel, **self.parallel._backend_kwargs
            )

    def terminate(self) -> None:
        """End a joblib call: release the workers and delete the call's temporary folder."""
        self.zoblib_backend.stop()
        self._release()
        self.reset_batch_stats()

    def _release(self) -> None:
        with self._lock:
            self._in_flight.clear()
        if self._folder is not None:
            remove_call_folder(self._folder)
        self._folder = None
        self._passing = None


def _choose_zoblib_backend(
    chosen: str | ParallelBackendBase | None, options: dict[str, Any]
) -> ParallelBackendBase:
    """Make the zoblib backend named, or the enclosing ``zoblib.parallel_config``'s, or loky's."""
    if chosen is None:
        active = get_active_config()
        if active.get("backend") is not None:
            params = {**active.get("backend_params", {}), **options}
            configured = make_backend(active["backend"], **params)
            if not configured.supports_sharedmem:
                return configured
        chosen = "loky"
    return make_backend(chosen, **options) if isinstance(chosen, str) else chosen
