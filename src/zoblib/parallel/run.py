"""One ``Parallel`` call from start to end: dispatching batches, collecting outcomes, cleaning up.

The calling thread does all the work: it keeps up to ``pre_dispatch`` batches in flight, waits
for the first to finish, turns its outcome into results (or into the task's exception), and
refills. When the call ends, however it ends, :meth:`CallRun.close` stops or aborts the backend
and deletes the call's temporary folder.
"""

from __future__ import annotations

import collections
import math
import pickle
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sized
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from typing import Any

from zoblib.errors import ArchiveError, ParallelTimeoutError, RemoteTaskError, WorkerDiedError
from zoblib.parallel import pickling
from zoblib.parallel.backends.base import ParallelBackendBase
from zoblib.parallel.batching import BatchSizer, InputReader
from zoblib.parallel.delayed import Task, check_task
from zoblib.parallel.progress import Progress
from zoblib.parallel.store import ArrayStore
from zoblib.parallel.tempfolder import create_call_folder, remove_call_folder, temp_root
from zoblib.parallel.worker import (
    BatchOutcome,
    LocalBatch,
    WorkerSetup,
    run_batch_local,
    run_batch_remote,
)


@dataclass(frozen=True)
class CallPlan:
    """Everything a call needs, resolved from ``Parallel``'s arguments and the configuration."""

    backend: ParallelBackendBase
    n_jobs: int
    timeout: float | None
    pre_dispatch: int | None
    batch_size: int | None
    temp_folder: str | None
    max_nbytes: int | None
    mmap_mode: str | None
    worker_env: Mapping[str, str]
    setup: WorkerSetup
    keep_workers: bool
    store: ArrayStore | None = None

    @property
    def by_reference(self) -> bool:
        """Whether big arrays travel as files (a process backend, and not switched off).

        Through ``store`` when one is given (any process backend), else through the call's
        temporary folder, which needs workers that read the caller's file system.
        """
        return (
            not self.backend.supports_sharedmem
            and (self.store is not None or self.backend.supports_shared_folder)
            and self.max_nbytes is not None
            and self.mmap_mode is not None
        )


@dataclass
class _Batch:
    start: int
    tasks: list[Task]
    started: float | None = None


class CallRun:
    """The state of one call: tasks not sent yet, batches in flight, the temporary folder.

    Parameters
    ----------
    plan
        The resolved settings.
    tasks
        The ``(function, args, kwargs)`` iterable given to ``Parallel``.
    progress
        Where progress is reported.
    on_close
        Called once when the call ends.
    """

    def __init__(
        self,
        plan: CallPlan,
        tasks: Iterable[Any],
        progress: Progress,
        on_close: Callable[[], None],
    ) -> None:
        self.plan = plan
        self.progress = progress
        self._on_close = on_close
        if plan.pre_dispatch is None:
            tasks = list(tasks)  # 'all': take every task now; batches stay adaptive
        self._remaining: int | None = len(tasks) if isinstance(tasks, Sized) else None
        adaptive_tail = self._remaining is None and plan.batch_size is None
        self._tasks = InputReader[Any](tasks, look_ahead=adaptive_tail)
        self._next_index = 0
        self._read = 0  # tasks taken from the input so far
        self._ready: collections.deque[list[Task]] = collections.deque()
        self._exhausted = False
        self._in_flight_limit = plan.pre_dispatch or 2 * plan.n_jobs
        self._pending: dict[Future[Any], _Batch] = {}
        self._sizer = BatchSizer(plan.batch_size, plan.n_jobs)
        self._folder: str | None = None
        self._passing: pickling.ArrayPassing | None = None
        self._closed = False

    # -- the call's life --------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers, make the temporary folder and send the first batches."""
        try:
            plan = self.plan
            if plan.by_reference:
                assert plan.max_nbytes is not None and plan.mmap_mode is not None
                if plan.store is not None:
                    self._passing = pickling.ArrayPassing(
                        None, plan.max_nbytes, plan.mmap_mode, store=plan.store
                    )
                    self.plan = replace(plan, setup=replace(plan.setup, results_store=plan.store))
                else:
                    self._folder = create_call_folder(temp_root(plan.temp_folder))
                    self._passing = pickling.ArrayPassing(self._folder, plan.max_nbytes, plan.mmap_mode)
                    self.plan = replace(plan, setup=replace(plan.setup, results_folder=self._folder))
            elif not plan.backend.supports_sharedmem:
                # Workers that cannot read our files: results come back whole too, even those
                # that are memmaps of the worker's own files.
                self.plan = replace(plan, setup=replace(plan.setup, max_nbytes=None))
            self.plan.backend.start(plan.n_jobs, plan.worker_env)
            self._fill()
        except BaseException:
            self.close(completed=False)
            raise

    def completions(self) -> Generator[tuple[int, list[Any]], None, None]:
        """Yield ``(index of the batch's first task, its results)`` as batches finish."""
        completed = False
        try:
            while True:
                self._fill()
                if not self._pending:
                    break
                yield from self._collect()
            completed = True
        finally:
            self.close(completed)

    def close(self, completed: bool) -> None:
        """End the call: stop the backend (abort it if tasks are in flight), delete the folder.

        ``completed`` tells whether every task ran (for the progress report).
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self._pending:
                # Tasks still queued or running after an error, a timeout, Ctrl-C or an
                # abandoned generator: stop them rather than wait for them.
                for future in self._pending:
                    future.cancel()
                self.plan.backend.abort()
            elif not self.plan.keep_workers:
                self.plan.backend.stop()
        finally:
            self._pending.clear()
            if self._folder is not None:
                remove_call_folder(self._folder)
            self.progress.finish(completed)
            self._on_close()

    # -- sending ------------------------------------------------------------------------------

    def _fill(self) -> None:
        while len(self._pending) < self._in_flight_limit:
            if not self._ready:
                if self._exhausted:
                    return
                self._read_batches()
                continue
            self._submit(self._ready.popleft())

    def _read_batches(self) -> None:
        """Take the next tasks from the input and cut them into batches, ready to send."""
        size = self._sizer.next_size(self._remaining)
        # Without a length, read a batch for every worker at once: when the input ends inside
        # that read, its tail is cut small and spread, instead of one big last batch running on
        # one worker while the others wait (what made 10,000 tiny tasks slower than joblib);
        # the reader looks one task ahead to tell an input that ends right at the read's end.
        # Never more batches than pre_dispatch leaves room for: the input is consumed only that
        # far ahead of the tasks done (joblib's contract, which lazy producers rely on).
        room = max(1, self._in_flight_limit - len(self._pending))
        wanted = size if self._remaining is not None else size * min(self.plan.n_jobs, room)
        tasks, ended = self._tasks.take(wanted)
        for offset, task in enumerate(tasks):
            if type(task) is not tuple or len(task) != 3:
                check_task(task, self._read + offset)  # explains what is wrong
        self._read += len(tasks)
        if ended:
            self._exhausted = True
            self.progress.set_total(self._read)
            if self._remaining is None and self.plan.batch_size is None:  # a fixed size stays
                size = max(1, math.ceil(len(tasks) / (2 * self.plan.n_jobs)))
        for first in range(0, len(tasks), size):
            self._ready.append(tasks[first : first + size])

    def _submit(self, tasks: list[Task]) -> None:
        plan = self.plan
        batch = _Batch(start=self._next_index, tasks=tasks)
        if self._running_count() < plan.n_jobs:
            batch.started = time.monotonic()
        self._next_index += len(tasks)
        if self._remaining is not None:
            self._remaining -= len(tasks)
        future: Future[Any]
        if plan.backend.supports_sharedmem:
            future = plan.backend.submit(run_batch_local, LocalBatch(plan.setup, tasks))
        else:
            payload = pickle_batch(plan.setup, tasks, self._passing, plan.backend, _describe(batch))
            future = plan.backend.submit(run_batch_remote, payload)
        self._pending[future] = batch

    def _running_count(self) -> int:
        return sum(batch.started is not None for batch in self._pending.values())

    # -- receiving ----------------------------------------------------------------------------

    def _collect(self) -> Iterator[tuple[int, list[Any]]]:
        done, _ = wait(list(self._pending), self._time_left(), FIRST_COMPLETED)
        if not done:
            raise self._timeout_error()
        for future in sorted(done, key=lambda future: self._pending[future].start):
            batch = self._pending.pop(future)
            outcome = self._outcome(future, batch)
            self._mark_started()
            self._sizer.record(len(batch.tasks), outcome.duration)
            self.progress.update(len(outcome.results))
            if outcome.failure is not None:
                raise self._task_error(batch, outcome)
            yield batch.start, outcome.results

    def _mark_started(self) -> None:
        # The pool runs batches in the order sent: a freed worker takes the oldest waiting one.
        free = self.plan.n_jobs - self._running_count()
        now = time.monotonic()
        for batch in sorted(self._pending.values(), key=lambda batch: batch.start):
            if free <= 0:
                break
            if batch.started is None:
                batch.started = now
                free -= 1

    def _time_left(self) -> float | None:
        if self.plan.timeout is None:
            return None
        starts = [batch.started for batch in self._pending.values() if batch.started is not None]
        if not starts:
            return self.plan.timeout
        return max(0.0, min(starts) + self.plan.timeout - time.monotonic())

    def _outcome(self, future: Future[Any], batch: _Batch) -> BatchOutcome:
        try:
            return batch_outcome(self.plan.backend, future)
        except WorkerDiedError as died:
            died.add_note(f"Tasks in flight included {_describe(batch)}.")
            raise

    def _task_error(self, batch: _Batch, outcome: BatchOutcome) -> BaseException:
        return task_error(batch.start, batch.tasks, outcome)

    def _timeout_error(self) -> ParallelTimeoutError:
        late = [batch for batch in self._pending.values() if batch.started is not None]
        late.sort(key=lambda batch: batch.started or 0.0)
        what = _describe(late[0]) if late else "a task"
        return ParallelTimeoutError(
            f"{what} ran longer than timeout={self.plan.timeout} s; the remaining tasks were "
            f"cancelled"
            + (
                " and the workers stopped"
                if self.plan.backend.supports_abort_running
                else " (running threads cannot be stopped and finish on their own)"
            )
        )


def pickle_batch(
    setup: WorkerSetup,
    tasks: list[Task],
    passing: pickling.ArrayPassing | None,
    backend: ParallelBackendBase,
    what: str,
) -> bytes:
    """Pickle a batch for :func:`~zoblib.parallel.worker.run_batch_remote`.

    Raises
    ------
    ArchiveError
        When the ``store=`` cannot take a big array (a missing bucket, refused credentials).
    pickle.PicklingError
        Whatever the pickler raised (``TypeError`` for a lock, what a ``__reduce__`` raises),
        as joblib raises: callers catch that. ``what`` names the tasks in the message.
    """
    try:
        return pickling.dumps((setup, tasks), passing, backend.shared_objects())
    except ArchiveError:
        raise  # the store= could not take an array: its own error names the URL and why
    except Exception as exc:
        raise pickle.PicklingError(
            f"Could not pickle the task to send it to the workers: {what} for the "
            f"{backend.name!r} backend: {type(exc).__name__}: {exc}. To share unpicklable "
            "objects, use prefer='threads' or require='sharedmem'."
        ) from exc


def batch_outcome(backend: ParallelBackendBase, future: Future[Any]) -> BatchOutcome:
    """Return the outcome of a finished batch future of ``backend`` (unpickled if need be).

    Raises
    ------
    WorkerDiedError
        If the backend says a worker died running it.
    """
    try:
        raw = future.result()
    except BaseException as exc:
        died = backend.worker_failure(exc)
        if died is None:
            raise
        raise died from exc
    if backend.supports_sharedmem:
        outcome: BatchOutcome = raw
        return outcome
    loaded: BatchOutcome = pickling.loads(raw)
    return loaded


def task_error(start: int, tasks: list[Task], outcome: BatchOutcome) -> BaseException:
    """Return the exception to raise for a batch whose task failed, with the worker's story.

    Parameters
    ----------
    start
        The index of the batch's first task in the call.
    tasks
        The batch's tasks.
    outcome
        The batch's outcome, with a failure.
    """
    failure = outcome.failure
    assert failure is not None
    if failure.error is not None:
        return failure.error  # same process: the exception object with its traceback
    index = start + failure.position
    try:
        error: BaseException = pickle.loads(failure.error_pickle or b"")
    except Exception:
        error = RemoteTaskError(f"{failure.type_name}: {failure.message}")
    function = tasks[failure.position][0]
    error.add_note(
        f"\nRaised by task {index} ({task_name(function)}) in worker process {failure.pid}; "
        f"the traceback in the worker:\n\n{failure.traceback_text}"
    )
    return error


def task_name(function: Callable[..., Any]) -> str:
    """Name a task's function in messages: its qualified name, else its repr."""
    return getattr(function, "__qualname__", None) or repr(function)


def _describe(batch: _Batch) -> str:
    first = batch.start
    last = batch.start + len(batch.tasks) - 1
    names = ", ".join(dict.fromkeys(task_name(task[0]) for task in batch.tasks))
    span = f"task {first}" if first == last else f"tasks {first}-{last}"
    return f"{span} ({names})"
