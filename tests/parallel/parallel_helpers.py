"""Task functions for the parallel tests: importable by name in worker processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np

from zoblib.parallel import Parallel, ParallelBackendBase, delayed, effective_n_jobs
from zoblib.parallel.config import get_active_config


def square(x: int) -> int:
    return x * x


def sleep_then_return(seconds: float, value: Any) -> Any:
    time.sleep(seconds)
    return value


def where_am_i(_: object = None, pause: float = 0.0) -> tuple[int, str]:
    time.sleep(pause)
    return os.getpid(), threading.current_thread().name


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"task got the bad value {x}")
    return x


def touch_then_maybe_fail(folder: str, x: int, bad: int) -> int:
    time.sleep(0.05)
    if x == bad:
        raise KeyError(x)
    with open(os.path.join(folder, f"done-{x}"), "w"):
        pass
    return x


class NeedsTwoArguments(Exception):
    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} and {second}")


def raise_unpicklable(_: int) -> None:
    raise NeedsTwoArguments("left", "right")


def exit_on(x: int, bad: int) -> int:
    if x == bad:
        os._exit(1)
    time.sleep(0.2)
    return x


def sigkill_on(x: int, bad: int) -> int:
    if x == bad:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return x


def describe_array(array: np.ndarray) -> dict[str, Any]:
    return {
        "type": type(array),
        "writeable": bool(array.flags.writeable),
        "filename": getattr(array, "filename", None),
        "sum": float(array.sum()) if array.dtype != object else None,
    }


def filled(shape: tuple[int, ...], value: float) -> np.ndarray:
    return np.full(shape, value)


def identity(x: Any) -> Any:
    return x


def write_into(array: np.ndarray, index: int, value: float) -> None:
    array[index] = value


def environment(_: object = None) -> dict[str, str | None]:
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return {name: os.environ.get(name) for name in names}


def nested_view(_: object = None) -> dict[str, Any]:
    """What a task sees of the configuration its own Parallel calls would get."""
    inner = Parallel(n_jobs=-1)
    return {
        "backend": inner.backend.name,
        "n_jobs_minus_one": effective_n_jobs(-1),
        "max_nbytes": inner.max_nbytes,
        "config_backend": get_active_config().get("backend"),
    }


def run_inner_parallel(x: int) -> list[int]:
    return Parallel(n_jobs=-1)(delayed(square)(x + i) for i in range(3))


class RecordingBackend(ParallelBackendBase):
    """Threads, but ``supports_sharedmem`` off: tasks arrive pickled, as in another process."""

    name: ClassVar[str] = "recording"
    supports_shared_folder: ClassVar[bool] = True

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.events: list[str] = []
        self.arguments: list[object] = []
        self._pool: ThreadPoolExecutor | None = None

    def start(self, n_jobs: int, worker_env: Mapping[str, str]) -> None:
        self.events.append(f"start {n_jobs}")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(n_jobs)

    def submit(self, function: Callable[[Any], Any], argument: Any) -> Future[Any]:
        assert self._pool is not None
        self.arguments.append(argument)
        return self._pool.submit(function, argument)

    def stop(self) -> None:
        self.events.append("stop")
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def abort(self) -> None:
        self.events.append("abort")
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


# -- joblib parity: initializers, nested pools, thread limits ----------------------------------

_INITIALIZED: list[str] = []


def record_initialization(folder: str, marker: str) -> None:
    """An initializer: remember ``marker`` and leave one file per run in ``folder``."""
    _INITIALIZED.append(marker)
    path = os.path.join(folder, f"{os.getpid()}-{len(_INITIALIZED)}-{time.monotonic_ns()}")
    with open(path, "w"):
        pass


def initialization_seen(_: object = None) -> tuple[int, list[str]]:
    time.sleep(0.01)  # let every worker get tasks
    return os.getpid(), list(_INITIALIZED)


def pid_of(_: object = None) -> int:
    return os.getpid()


def run_nested(backend: str | None, n_jobs: int = 2) -> dict[str, Any]:
    """Run an inner Parallel of ``backend`` in a task; report where its tasks ran, and warnings."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inner = Parallel(n_jobs=n_jobs, backend=backend)
        pids = inner(delayed(pid_of)(i) for i in range(4))
    return {
        "pid": os.getpid(),
        "inner_pids": set(pids),
        "inner_backend": inner.backend.name,
        "warnings": [str(warning.message) for warning in caught],
    }


def inner_default_backends(_: object = None) -> list[str]:
    """The default backend one and two levels below this task."""
    first = Parallel(n_jobs=2)
    below = first(delayed(_default_backend_name)(i) for i in range(2))
    return [first.backend.name, *below]


def _default_backend_name(_: object = None) -> str:
    return Parallel(n_jobs=2).backend.name


def thread_limits(_: object = None) -> dict[str, str | None]:
    names = (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMBA_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "ENABLE_IPC",
    )
    return {name: os.environ.get(name) for name in names}


def broken_backend_factory(**params: Any) -> ParallelBackendBase:
    raise RuntimeError("this backend cannot be made")


# -- wrap_non_picklable_objects ----------------------------------------------------------------


def call_in_worker(function: Callable[[Any], Any], x: Any) -> tuple[str, Any, int, bool]:
    """Call ``function`` where this task runs: what arrived, the result, the pid, and whether
    the standard ``pickle`` can send it on from there."""
    import pickle

    try:
        pickle.dumps(function)
        repicklable = True
    except (pickle.PicklingError, AttributeError, TypeError):
        repicklable = False
    return type(function).__name__, function(x), os.getpid(), repicklable


# -- joblib's backend contract ------------------------------------------------------------------


def nesting_levels_seen(backend: str) -> dict[str, int | None]:
    """The ``nesting_level`` of the backends a task's own blocks and calls get."""
    from zoblib.parallel import parallel_backend, parallel_config

    with parallel_config(backend) as config:
        from_config = config["backend"].nesting_level
    with parallel_backend(backend) as (made, _):
        from_backend = made.nesting_level
    return {
        "parallel_config": from_config,
        "parallel_backend": from_backend,
        "Parallel": Parallel(n_jobs=2, backend=backend).backend.nesting_level,
    }


def append_then_return(log: Any, x: int) -> int:
    log.append(f"consumed {x}")
    return x


def recurse_with_tblib_pickling(_: int) -> None:
    """Recurse until RecursionError after importing distributed, which makes every traceback
    picklable (tblib): the error's own deep traceback then fails to pickle."""
    import distributed  # noqa: F401

    def deeper(depth: int) -> int:
        return deeper(depth + 1) + 1

    deeper(0)
