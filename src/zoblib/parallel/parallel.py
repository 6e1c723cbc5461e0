"""``Parallel``: joblib's API for running ``delayed`` tasks on a pool of workers."""

from __future__ import annotations

import functools
import itertools
import multiprocessing.context
import os
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sized
from types import MappingProxyType, TracebackType
from typing import Any, Literal

from zoblib.errors import ZoblibWarning
from zoblib.parallel.arrays import memmap_mode
from zoblib.parallel.backends.base import ParallelBackendBase
from zoblib.parallel.batching import check_batch_size, parse_pre_dispatch
from zoblib.parallel.config import (
    FALSE_DEFAULT,
    INHERITED_IN_WORKERS,
    MAX_NBYTES_DEFAULT,
    MMAP_MODE_DEFAULT,
    NONE_DEFAULT,
    PREFER_VALUES,
    REQUIRE_VALUES,
    VERBOSE_DEFAULT,
    WorkerShare,
    array_store,
    available_cpus,
    check_choice,
    convert_n_jobs,
    get_active_config,
    is_default,
    parse_nbytes,
    resolve_n_jobs,
    setting,
    worker_share,
)
from zoblib.parallel.delayed import check_task
from zoblib.parallel.progress import Progress
from zoblib.parallel.registry import default_backend_name, make_backend
from zoblib.parallel.run import CallPlan, CallRun
from zoblib.parallel.threadlimits import thread_limit_env
from zoblib.parallel.worker import WorkerSetup

ReturnAs = Literal["list", "generator", "generator_unordered"]
_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})
RETURN_AS_VALUES = ("list", "generator", "generator_unordered")


class Parallel:
    """Run ``delayed`` tasks in parallel; big numpy arrays travel as memory-mapped files.

    Parameters
    ----------
    n_jobs
        Number of workers. ``-1`` uses all CPUs (see :func:`~zoblib.cpu_count`), ``-2`` all but
        one, and so on. ``None`` means 1 unless a ``parallel_config`` block sets it. With one
        worker the tasks run in the calling thread. Converted with ``int()`` as joblib does
        (``'2'`` and ``2.3`` mean 2; ``'2.3'`` raises ``ValueError``).
    backend
        ``'loky'`` (default: reusable worker processes), ``'multiprocessing'``,
        ``'threading'``, ``'sequential'``, a name registered with
        :func:`~zoblib.register_parallel_backend`, a backend object, or a
        :mod:`multiprocessing` context (``multiprocessing.get_context('spawn')``: the
        ``'multiprocessing'`` backend with that start method).
    return_as
        ``'list'``: a list of the results in input order. ``'generator'``: yield them in input
        order as they come. ``'generator_unordered'``: yield them as they finish.
    verbose
        Print progress messages to standard error; more the higher (joblib's levels).
    timeout
        Seconds a task (a batch of tasks) may run; longer raises
        :class:`~zoblib.ParallelTimeoutError` (a ``multiprocessing.TimeoutError``, as joblib
        raises, and a ``TimeoutError``). Ignored, with a warning, with one worker.
    pre_dispatch
        Batches kept in flight: an int, ``'all'``, or an expression such as
        ``'2 * n_jobs'``.
    batch_size
        Tasks sent to a worker at once: ``'auto'`` adapts it so that batches last about
        50 ms; an int fixes it.
    temp_folder
        Where arrays by reference are written (default: ``$ZOBLIB_TEMP_FOLDER``, else
        ``/dev/shm`` when it has room, else the system's temporary folder).
    max_nbytes
        Numpy arrays larger than this (``'1M'``, ``'100K'``, an int) go to process workers as
        read-only memory maps of a file written once per call, and large array results come
        back the same way. ``None`` switches this off.
    mmap_mode
        How workers map those arrays: ``'r'`` (read-only), ``'r+'`` (writes go to the shared
        file), ``'c'`` (private copy-on-write), ``'w+'`` (as ``'r+'``). ``None`` switches arrays
        by reference off, as ``max_nbytes=None`` does.
    prefer
        ``'processes'`` or ``'threads'``: the backend to use when none is chosen.
    require
        ``'sharedmem'``: the tasks need shared memory, so threads are used.
    progress_bar
        Draw a progress bar with rate and time left on standard error: ``tqdm.auto``'s when
        tqdm is installed (a widget in Jupyter), else a text bar of zoblib's. Calls nested in
        a task of another call draw none.
    return_memmaps
        Return array results that came back by reference (larger than ``max_nbytes``, from
        process workers) as ``np.memmap`` (private, writable copy-on-write maps of the files the
        workers wrote) instead of ordinary arrays; both cost no copy of the data.
    **backend_kwargs
        Options for the backend, as joblib's ``backend_kwargs``: ``initializer`` and
        ``initargs`` (``initializer(*initargs)`` runs once in each worker process of
        ``'loky'`` and ``'multiprocessing'``), ``idle_worker_timeout`` (``'loky'``),
        ``maxtasksperchild`` (``'multiprocessing'``). The thread and sequential backends
        ignore them, with a warning.

    Raises
    ------
    ValueError
        For ``n_jobs=0`` or one ``int()`` cannot read, unknown ``prefer``/``require``/
        ``return_as`` values, and ``prefer='processes'`` with ``require='sharedmem'``.

    Examples
    --------
    >>> from math import sqrt
    >>> from zoblib.parallel import Parallel, delayed
    >>> Parallel(n_jobs=2)(delayed(sqrt)(i**2) for i in range(5))
    [0.0, 1.0, 2.0, 3.0, 4.0]
    """

    def __init__(
        self,
        n_jobs: int | None = NONE_DEFAULT,
        backend: str | ParallelBackendBase | multiprocessing.context.BaseContext | None = NONE_DEFAULT,
        return_as: ReturnAs = "list",
        verbose: int = VERBOSE_DEFAULT,
        timeout: float | None = None,
        pre_dispatch: int | str = "2 * n_jobs",
        batch_size: int | str = "auto",
        temp_folder: str | os.PathLike[str] | None = NONE_DEFAULT,
        max_nbytes: int | str | None = MAX_NBYTES_DEFAULT,
        mmap_mode: str | None = MMAP_MODE_DEFAULT,
        prefer: str | None = NONE_DEFAULT,
        require: str | None = NONE_DEFAULT,
        *,
        progress_bar: bool = FALSE_DEFAULT,
        return_memmaps: bool = False,
        **backend_kwargs: Any,
    ) -> None:
        self.prefer = setting("prefer", prefer)
        self.require = setting("require", require)
        self.backend = _choose_backend(backend, self.prefer, self.require, backend_kwargs)
        chosen_n_jobs = setting("n_jobs", n_jobs)
        self.n_jobs = convert_n_jobs(self.backend.default_n_jobs if chosen_n_jobs is None else chosen_n_jobs)
        resolve_n_jobs(self.n_jobs)  # reject n_jobs=0 now, not at call time
        check_choice("return_as", return_as, RETURN_AS_VALUES)
        self.return_as = return_as
        self.verbose = int(setting("verbose", verbose))
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be None or positive, got {timeout!r}")
        self.timeout = timeout
        parse_pre_dispatch(pre_dispatch, 1)
        self.pre_dispatch = pre_dispatch
        self.batch_size = check_batch_size(batch_size)
        folder = setting("temp_folder", temp_folder)
        self.temp_folder = None if folder is None else os.fspath(folder)
        self.max_nbytes = parse_nbytes(setting("max_nbytes", max_nbytes))
        self.mmap_mode = setting("mmap_mode", mmap_mode)
        if self.mmap_mode is not None:
            memmap_mode(self.mmap_mode)
        self.store = array_store(get_active_config())
        self.progress_bar = bool(setting("progress_bar", progress_bar))
        self.return_memmaps = bool(return_memmaps)
        self._inner_threads: int | None = get_active_config().get("inner_max_num_threads")
        self._inherited = {
            key: value for key, value in get_active_config().items() if key in INHERITED_IN_WORKERS
        }
        self._keep_workers = False
        # The call under way (a token per call, so a late clean-up of an earlier call's
        # generator cannot end the next one), or None; joblib takes its lock to check it.
        self._running: object | None = None
        self._running_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_jobs={self.n_jobs}, backend={self.backend.name!r})"

    # -- reuse --------------------------------------------------------------------------------

    def __enter__(self) -> Parallel:
        """Start the workers once for every call made inside the ``with`` block."""
        n_jobs = self._effective_workers()
        if n_jobs > 1:
            self.backend.start(n_jobs, self._worker_env(n_jobs))
        self._keep_workers = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._keep_workers = False
        self.backend.stop()

    # -- calls --------------------------------------------------------------------------------

    def __call__(self, iterable: Iterable[Any]) -> Any:
        """Run the tasks of ``iterable`` (``delayed(f)(x)`` items).

        Returns
        -------
        list or generator
            As ``return_as`` says.

        Raises
        ------
        Exception
            The first exception a task raised, of its original type, with the worker's
            traceback in its notes; the other tasks are cancelled.
        WorkerDiedError
            If a worker process died; the next call starts new workers.
        ParallelTimeoutError
            If a task ran longer than ``timeout``.
        """
        call = self._claim()
        try:
            return self._start_call(iterable, call)
        except BaseException:
            self._call_ended(call)
            raise

    def _claim(self) -> object:
        """Mark a call as under way, or raise joblib's error if one is (a generator's)."""
        with self._running_lock:
            if self._running is not None:
                message = "This Parallel instance is already running !"
                if self.return_as != "list":
                    message += (
                        " Before submitting new tasks, you must wait for the completion of all "
                        "the previous tasks, or clean all references to the output generator."
                    )
                raise RuntimeError(message)
            call = object()
            self._running = call
            return call

    def _call_ended(self, call: object) -> None:
        with self._running_lock:
            if self._running is call:
                self._running = None

    def _effective_workers(self) -> int:
        n_jobs = self.backend.effective_n_jobs(self.n_jobs)
        if n_jobs < 1:
            raise RuntimeError(f"{type(self.backend).__name__} has no active worker.")
        return n_jobs

    def _start_call(self, iterable: Iterable[Any], call: object) -> Any:
        n_jobs = self._effective_workers()
        total = len(iterable) if isinstance(iterable, Sized) else None
        progress = Progress(
            verbose=self.verbose,
            progress_bar=self.progress_bar,
            label=f"Parallel(n_jobs={n_jobs})",
            total=total,
        )
        if n_jobs == 1:
            if self.timeout is not None:
                warnings.warn(
                    "The backend class 'SequentialBackend' does not support timeout. You have "
                    f"set 'timeout={self.timeout}' in Parallel but the 'timeout' parameter will "
                    "not be used.",
                    ZoblibWarning,
                    stacklevel=3,
                )
            progress.begin("Running the tasks sequentially in this process.")
            results = self._run_inline(iterable, progress, call)
            # A generator dropped before its first next() never runs its finally.
            weakref.finalize(results, self._call_ended, call)
            weakref.finalize(results, progress.finish, False)
        else:
            progress.begin(f"Using backend {self.backend.name} with {n_jobs} concurrent workers.")
            results = self._run_pool(iterable, n_jobs, progress, call)
        return list(results) if self.return_as == "list" else results

    def _run_inline(self, iterable: Iterable[Any], progress: Progress, call: object) -> Iterator[Any]:
        completed = False
        # A fixed batch_size is honoured here too, as joblib does: its tasks are taken from
        # the input, then run (a producer sees its items consumed a batch at a time).
        batch_size = self.batch_size or 1
        tasks = iter(iterable)
        index = 0
        try:
            while batch := list(itertools.islice(tasks, batch_size)):
                checked = [check_task(task, index + offset) for offset, task in enumerate(batch)]
                index += len(batch)
                for function, args, kwargs in checked:
                    result = function(*args, **kwargs)
                    progress.update(1)
                    yield result
            progress.set_total(progress.done)
            completed = True
        finally:
            self._call_ended(call)
            progress.finish(completed)

    def _run_pool(
        self, iterable: Iterable[Any], n_jobs: int, progress: Progress, call: object
    ) -> Iterator[Any]:
        plan = CallPlan(
            backend=self.backend,
            n_jobs=n_jobs,
            timeout=self.timeout,
            pre_dispatch=parse_pre_dispatch(self.pre_dispatch, n_jobs),
            batch_size=self.batch_size,
            temp_folder=self.temp_folder,
            max_nbytes=self.max_nbytes,
            mmap_mode=self.mmap_mode,
            worker_env=self._worker_env(n_jobs),
            setup=WorkerSetup(
                share=self._share(n_jobs),
                inherited=self._inherited,
                max_nbytes=self.max_nbytes if self.mmap_mode else None,
                memmap_results=self.return_memmaps,
            ),
            keep_workers=self._keep_workers,
            store=self.store,
        )
        run = CallRun(plan, iterable, progress, on_close=functools.partial(self._call_ended, call))
        run.start()
        results = _unordered(run) if self.return_as == "generator_unordered" else _ordered(run)
        # A generator dropped before its first next() never runs its finally: end the call then.
        weakref.finalize(results, run.close, False)
        return results

    def _share(self, n_jobs: int) -> WorkerShare:
        outer = worker_share()
        level = 0 if outer is None else outer.nesting_level
        return WorkerShare(nesting_level=level + 1, cpus=max(1, available_cpus() // n_jobs))

    def _worker_env(self, n_jobs: int) -> dict[str, str]:
        explicit = self._inner_threads if self.backend.supports_worker_env else None
        return thread_limit_env(self._share(n_jobs).cpus, explicit)


def _ordered(run: CallRun) -> Iterator[Any]:
    completions = run.completions()
    waiting: dict[int, list[Any]] = {}
    next_index = 0
    try:
        for start, results in completions:
            waiting[start] = results
            while next_index in waiting:
                batch = waiting.pop(next_index)
                next_index += len(batch)
                yield from batch
    finally:
        completions.close()


def _unordered(run: CallRun) -> Iterator[Any]:
    completions = run.completions()
    try:
        for _, results in completions:
            yield from results
    finally:
        completions.close()


def effective_n_jobs(n_jobs: int | None = -1) -> int:
    """Return the number of workers ``Parallel(n_jobs=n_jobs)`` would use here.

    It takes the active ``parallel_config`` into account (its backend and, for
    ``n_jobs=None``, its ``n_jobs``), and inside a worker counts that worker's share of CPUs.

    Parameters
    ----------
    n_jobs
        As for :class:`Parallel`.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> from zoblib.parallel import cpu_count, effective_n_jobs
    >>> effective_n_jobs(1)
    1
    >>> effective_n_jobs(-1) == cpu_count()
    True
    """
    backend = _choose_backend(None, setting("prefer", None), setting("require", None))
    chosen = setting("n_jobs", n_jobs)
    return backend.effective_n_jobs(backend.default_n_jobs if chosen is None else chosen)


def _choose_backend(
    backend: str | ParallelBackendBase | multiprocessing.context.BaseContext | None,
    prefer: str | None,
    require: str | None,
    options: Mapping[str, Any] = _NO_OPTIONS,
) -> ParallelBackendBase:
    """Pick the backend of a call, as joblib does, with ``options`` (backend_kwargs) applied."""
    check_choice("prefer", prefer, PREFER_VALUES)
    check_choice("require", require, REQUIRE_VALUES)
    if prefer == "processes" and require == "sharedmem":
        raise ValueError(
            "prefer == 'processes' and require == 'sharedmem' are inconsistent settings: "
            "process workers cannot share the caller's memory; drop one of them"
        )
    if isinstance(backend, multiprocessing.context.BaseContext):
        # joblib's way of choosing the start method: the context stands for the backend.
        return make_backend("multiprocessing", context=backend, **options)
    if not is_default(backend) and backend is not None:
        chosen = _with_options(backend, {}, options)
        if require == "sharedmem" and not chosen.supports_sharedmem:
            raise ValueError(
                f"backend {chosen.name!r} does not share memory with the caller, but "
                "require='sharedmem' was given: use backend='threading', or drop require"
            )
        return chosen
    active = get_active_config()
    if active.get("backend") is not None:
        chosen = _with_options(active["backend"], active.get("backend_params", {}), options)
        if require == "sharedmem" and not chosen.supports_sharedmem:
            return make_backend("threading")
        return chosen
    if prefer == "threads" or require == "sharedmem":
        return make_backend("threading", **options)
    chosen = make_backend(default_backend_name(), **options)
    if prefer == "processes" and chosen.supports_sharedmem:
        return make_backend("loky", **options)
    return chosen


def _with_options(
    backend: str | ParallelBackendBase, params: Mapping[str, Any], options: Mapping[str, Any]
) -> ParallelBackendBase:
    """Make a backend by name with its params and options, or apply options to an object."""
    if isinstance(backend, str):
        return make_backend(backend, **{**params, **options})
    return make_backend(backend).with_options(options) if options else make_backend(backend)
