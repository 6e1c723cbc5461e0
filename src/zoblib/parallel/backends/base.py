"""The contract of a parallel backend: how the batches of a ``Parallel`` call run.

``Parallel`` does everything else (batching, pickling, arrays by reference, ordering, errors,
timeouts, progress); a backend only starts workers, runs a function on one argument there and
stops them. A third-party backend subclasses :class:`ParallelBackendBase` and is registered
with :func:`~zoblib.register_parallel_backend`.
"""

from __future__ import annotations

import signal
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, ClassVar, TypeVar

from zoblib.errors import WorkerDiedError, ZoblibWarning
from zoblib.parallel.config import resolve_n_jobs

A = TypeVar("A")
R = TypeVar("R")


class ParallelBackendBase(ABC):
    """Base class of parallel backends.

    A call goes: :meth:`start` (once per call, or once per ``with Parallel(...)`` block; it
    must accept being called again while started), any number of :meth:`submit`, then
    :meth:`stop` when all went well, or :meth:`abort` after an error, a timeout, Ctrl-C or an
    abandoned generator. A backend may be started again after either.

    What ``submit`` receives depends on the flags: with ``supports_sharedmem`` the argument is
    a plain Python object and the function is called in this process; without it both are
    picklable by the standard :mod:`pickle` (the argument is ``bytes``; ``Parallel`` already
    pickled the tasks with cloudpickle), ready to go to another process or machine.

    Attributes
    ----------
    name
        Shown in messages (``verbose``, errors).
    supports_sharedmem
        Tasks run in the caller's process (threads): they see its objects, nothing is pickled.
    supports_shared_folder
        Workers read the caller's file system, so big numpy arrays travel as references to
        files in the call's temporary folder instead of through the pipe.
    supports_abort_running
        :meth:`abort` stops tasks that are already running, not only the queued ones.
    supports_worker_env
        :meth:`start` sets its ``worker_env`` in the workers before they import anything, so
        BLAS/OpenMP thread limits take effect.
    default_n_jobs
        What ``n_jobs=None`` means with this backend.
    nesting_level
        How deep in nested ``Parallel`` calls the backend was first used (joblib's attribute):
        0 in the main program, 1 in the tasks of a call, and so on. Set by zoblib when the
        backend is made or first given to ``Parallel`` or ``parallel_config``.
    """

    name: ClassVar[str] = "custom"
    supports_sharedmem: ClassVar[bool] = False
    supports_shared_folder: ClassVar[bool] = False
    supports_abort_running: ClassVar[bool] = False
    supports_worker_env: ClassVar[bool] = False
    default_n_jobs: ClassVar[int] = 1
    nesting_level: int | None = None

    def effective_n_jobs(self, n_jobs: int) -> int:
        """Return how many tasks run at once for the requested ``n_jobs``.

        The default counts negative values from the CPUs available (a worker's share when
        called from inside a worker). A cluster backend would count its workers instead.
        """
        return resolve_n_jobs(n_jobs)

    @abstractmethod
    def start(self, n_jobs: int, worker_env: Mapping[str, str]) -> None:
        """Make ``n_jobs`` workers ready, reusing running ones when possible.

        Parameters
        ----------
        n_jobs
            The value :meth:`effective_n_jobs` returned.
        worker_env
            Environment variables for new worker processes (BLAS/OpenMP thread limits).
        """

    @abstractmethod
    def submit(self, function: Callable[[A], R], argument: A) -> Future[R]:
        """Run ``function(argument)`` in a worker and return its future.

        The future may also fail with a backend error (for instance a worker that died), which
        :meth:`worker_failure` translates.
        """

    @abstractmethod
    def stop(self) -> None:
        """Release the workers after a call or a ``with Parallel(...)`` block.

        A backend may keep them alive for the next call (loky does, until they are idle for a
        while).
        """

    @abstractmethod
    def abort(self) -> None:
        """Cancel queued tasks and, if it can, stop running ones; the next start begins anew."""

    def shared_objects(self) -> Mapping[int, int]:
        """The objects the workers already hold (dask's ``scatter=``): ``id`` to position.

        Batches pickle those as their position only; the backend hands each batch the
        workers' copies (see :mod:`~zoblib.parallel.shared_objects`). Default: none.
        """
        return {}

    def worker_failure(self, error: BaseException) -> WorkerDiedError | None:
        """Translate this backend's "a worker ended abruptly" error, or return None.

        Parameters
        ----------
        error
            An exception raised by a future from :meth:`submit`.
        """
        return None

    def with_options(self, options: Mapping[str, Any]) -> ParallelBackendBase:
        """Return this backend with ``Parallel(..., **options)`` applied (joblib's backend_kwargs).

        The default takes none: it warns that they are ignored (as joblib's backends ignore the
        ones they do not know) and returns ``self``. The built-in backends return a new backend
        made with their options updated.
        """
        warn_ignored_options(self.name, options)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def warn_ignored_options(backend: str, options: Mapping[str, Any]) -> None:
    """Warn that the ``backend`` backend ignores ``options`` (joblib ignores them silently)."""
    if options:
        warnings.warn(
            f"the {backend!r} backend ignores the option(s) {', '.join(sorted(options))}, as joblib's does",
            ZoblibWarning,
            stacklevel=4,
        )


def describe_exit_codes(exit_codes: tuple[int, ...]) -> str:
    """Say in words what ended a worker, from its exit codes (negative: killed by a signal)."""
    if not exit_codes:
        return "ended abruptly (its exit code is unknown)"
    words = []
    for code in exit_codes:
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            meaning = _SIGNAL_MEANINGS.get(name, "")
            words.append(f"was killed by {name}{meaning}")
        else:
            words.append(
                f"exited with status {code} (the task, or a library it calls, ended the process, "
                "e.g. with os._exit())"
            )
    return "; another ".join(dict.fromkeys(words))


_SIGNAL_MEANINGS = {
    "SIGKILL": (" (as the kernel's out-of-memory killer does: check the memory the tasks use, or `dmesg`)"),
    "SIGSEGV": " (a segmentation fault, usually a bug in a compiled extension)",
    "SIGABRT": " (an abort, usually a failed assertion in a compiled extension)",
    "SIGBUS": " (a bus error: a memory-mapped file that shrank, or a full /dev/shm)",
    "SIGTERM": " (someone asked it to terminate)",
}


def worker_died(backend: str, exit_codes: tuple[int, ...], cause: str = "") -> WorkerDiedError:
    """Build the error raised when a worker process of ``backend`` died during a call."""
    message = (
        f"A worker process of the {backend!r} backend {describe_exit_codes(exit_codes)} "
        "while tasks were running. "
        "The workers were shut down; the next call starts new ones."
    )
    if cause:
        message += f" {cause}"
    return WorkerDiedError(message, exit_codes)


def exit_codes_of(processes: Mapping[Any, Any]) -> tuple[int, ...]:
    """Collect the exit codes of the ended processes among ``multiprocessing`` ones.

    Pools terminate the surviving workers once one died, so SIGTERM codes are left out when
    another code tells the real story.
    """
    codes = []
    for process in processes.values():
        code = getattr(process, "exitcode", None)
        if code is not None and code != 0:
            codes.append(int(code))
    telling = [code for code in codes if code != -signal.SIGTERM]
    return tuple(dict.fromkeys(telling or codes))
