"""What a worker runs: one batch of tasks, under the nested configuration, errors captured.

:func:`run_batch_local` serves backends with shared memory (threads): objects go in and out as
they are. :func:`run_batch_remote` serves process backends: it takes and returns bytes pickled
by :mod:`zoblib.parallel.pickling`, big arrays by reference both ways.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from zoblib.errors import RemoteTaskError
from zoblib.parallel import pickling
from zoblib.parallel.config import WorkerShare, worker_context
from zoblib.parallel.delayed import Task
from zoblib.parallel.store import ArrayStore


@dataclass(frozen=True)
class WorkerSetup:
    """What every batch of a call tells its worker.

    Attributes
    ----------
    share
        The nesting level and the CPUs the tasks' own parallel calls may use.
    inherited
        The caller's ``parallel_config`` settings that nested calls keep.
    results_folder
        Where big array results are written (None: results are pickled whole).
    max_nbytes
        Results larger than this go by reference.
    memmap_results
        Whether results that go by reference reach the caller as ``np.memmap`` objects.
    results_store
        The content-named store big array results go to instead of ``results_folder``.
    """

    share: WorkerShare
    inherited: Mapping[str, Any] = field(default_factory=dict)
    results_folder: str | None = None
    max_nbytes: int | None = None
    memmap_results: bool = False
    results_store: ArrayStore | None = None


@dataclass
class TaskFailure:
    """A task that raised: where, what, and the worker's traceback as text."""

    position: int
    type_name: str
    message: str
    traceback_text: str
    pid: int
    thread_name: str
    error: BaseException | None = None
    error_pickle: bytes | None = None


@dataclass
class BatchOutcome:
    """The results of a batch, up to the first failing task, and how long it took."""

    results: list[Any]
    failure: TaskFailure | None
    duration: float
    pid: int


@dataclass(frozen=True)
class LocalBatch:
    """A batch for a shared-memory backend: tasks as objects."""

    setup: WorkerSetup
    tasks: list[Task]


def run_tasks(setup: WorkerSetup, tasks: list[Task], started: float) -> BatchOutcome:
    """Run tasks in order and stop at the first exception, which is captured, not raised."""
    results: list[Any] = []
    failure = None
    with worker_context(setup.inherited, setup.share):
        for position, (function, args, kwargs) in enumerate(tasks):
            try:
                results.append(function(*args, **kwargs))
            except Exception as exc:
                failure = TaskFailure(
                    position=position,
                    type_name=f"{type(exc).__module__}.{type(exc).__qualname__}",
                    message=str(exc),
                    traceback_text=_format_traceback(exc),
                    pid=os.getpid(),
                    thread_name=threading.current_thread().name,
                    error=exc,
                )
                break
    return BatchOutcome(results, failure, time.perf_counter() - started, os.getpid())


def _format_traceback(error: BaseException) -> str:
    # Start at the task's own frame: the first one is run_tasks calling it.
    frames = error.__traceback__.tb_next if error.__traceback__ is not None else None
    return "".join(traceback.format_exception(type(error), error, frames))


def run_batch_local(batch: LocalBatch) -> BatchOutcome:
    """Run a batch in this process (threads): the failure keeps the exception object itself."""
    return run_tasks(batch.setup, batch.tasks, time.perf_counter())


def run_batch_remote(payload: bytes) -> bytes:
    """Run a pickled ``(WorkerSetup, tasks)`` batch in a worker process; return the pickled outcome.

    Arrays arrive as memmaps of the caller's files; big array results are written to the
    call's folder and go back by reference.
    """
    started = time.perf_counter()
    setup, tasks = pickling.loads(payload)
    outcome = run_tasks(setup, tasks, started)
    if outcome.failure is not None and outcome.failure.error is not None:
        outcome.failure.error_pickle = _portable_error(outcome.failure)
        outcome.failure.error = None
    passing = None
    if setup.max_nbytes is not None:
        passing = pickling.ArrayPassing(
            setup.results_folder,
            setup.max_nbytes,
            "r",
            for_results=True,
            memmap_results=setup.memmap_results,
            store=setup.results_store,
        )
    try:
        return pickling.dumps(outcome, passing)
    except Exception as exc:
        return pickling.dumps(_unpicklable_result(outcome, exc), passing)


def _portable_error(failure: TaskFailure) -> bytes:
    """Pickle the exception, or a stand-in when it would not survive the trip back.

    Where tracebacks are picklable (tblib, which importing ``distributed`` turns on), a deep
    one (a RecursionError's) may fail to pickle: the exception is then sent without its
    tracebacks, whose text travels anyway.
    """
    error = failure.error
    for attempt in range(2):
        if attempt:
            _drop_tracebacks(error)
        try:
            data: bytes = cloudpickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(data)  # exceptions whose __init__ wants other arguments fail only here
            return data
        except Exception:
            continue
    stand_in = RemoteTaskError(
        f"{failure.type_name}: {failure.message} (the exception itself could not be "
        f"sent back from the worker)\n\n{failure.traceback_text}"
    )
    return cloudpickle.dumps(stand_in, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]


def _drop_tracebacks(error: BaseException | None) -> None:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


def _unpicklable_result(outcome: BatchOutcome, error: Exception) -> BatchOutcome:
    """Turn a batch whose results cannot be pickled into one failing at the first culprit."""
    culprit = len(outcome.results)
    for position, result in enumerate(outcome.results):
        try:
            cloudpickle.dumps(result)
        except Exception as exc:
            culprit, error = position, exc
            break
    stand_in = RemoteTaskError(
        f"the result of the task could not be pickled to send it back from the worker: "
        f"{type(error).__name__}: {error}"
    )
    failure = TaskFailure(
        position=culprit,
        type_name="zoblib.errors.RemoteTaskError",
        message=str(stand_in),
        traceback_text="",
        pid=os.getpid(),
        thread_name=threading.current_thread().name,
        error_pickle=cloudpickle.dumps(stand_in),
    )
    return BatchOutcome(outcome.results[:culprit], failure, outcome.duration, outcome.pid)
