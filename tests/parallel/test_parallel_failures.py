"""Failures: task exceptions, dead workers, timeouts, Ctrl-C."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from pathlib import Path

import psutil
import pytest
from parallel_helpers import (
    exit_on,
    fail_on,
    raise_unpicklable,
    recurse_with_tblib_pickling,
    sigkill_on,
    sleep_then_return,
    square,
    touch_then_maybe_fail,
)

from zoblib.errors import ParallelTimeoutError, RemoteTaskError, WorkerDiedError
from zoblib.parallel import Parallel, delayed
from zoblib.parallel.backends.base import describe_exit_codes

PROCESS_BACKENDS = ["loky", "multiprocessing"]


@pytest.mark.parametrize("backend", ["loky", "multiprocessing", "threading"])
def test_a_task_exception_keeps_its_type_and_the_worker_traceback(backend: str) -> None:
    with pytest.raises(ValueError, match="task got the bad value 3") as caught:
        Parallel(n_jobs=2, backend=backend)(delayed(fail_on)(i, 3) for i in range(8))
    error = caught.value
    if backend == "threading":
        # Same process: the traceback itself reaches down into the task.
        frames = [frame.f_code.co_name for frame, _ in traceback.walk_tb(error.__traceback__)]
        assert "fail_on" in frames
    else:
        (note,) = error.__notes__
        assert "task 3 (fail_on)" in note
        assert 'raise ValueError(f"task got the bad value {x}")' in note
        assert "parallel_helpers.py" in note
    # The pool is fine afterwards.
    assert Parallel(n_jobs=2, backend=backend)(delayed(square)(i) for i in range(3)) == [0, 1, 4]


def test_remaining_tasks_are_cancelled(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        Parallel(n_jobs=2, batch_size=1)(
            delayed(touch_then_maybe_fail)(str(tmp_path), i, 2) for i in range(60)
        )
    time.sleep(0.2)  # anything still running would write its file now
    assert len(os.listdir(tmp_path)) < 10


def test_an_exception_that_cannot_travel_becomes_a_remote_task_error() -> None:
    with pytest.raises(RemoteTaskError, match="NeedsTwoArguments: left and right"):
        Parallel(n_jobs=2)(delayed(raise_unpicklable)(i) for i in range(2))


def test_an_error_whose_traceback_cannot_travel_keeps_its_type() -> None:
    # With distributed imported, tblib pickles tracebacks: a RecursionError's own thousand
    # frames then fail to pickle; the error travels without them (its text keeps them).
    pytest.importorskip("distributed")
    with pytest.raises(RecursionError):
        Parallel(n_jobs=2)(delayed(recurse_with_tblib_pickling)(i) for i in range(2))


def test_a_result_that_cannot_be_pickled_is_reported() -> None:
    with pytest.raises(RemoteTaskError, match="could not be pickled"):
        Parallel(n_jobs=2)(delayed(threading.Lock)() for _ in range(2))


def test_arguments_that_cannot_be_pickled_are_reported() -> None:
    lock = threading.Lock()
    # joblib's type: pickle.PicklingError, caused by what the pickler raised.
    with pytest.raises(pickle.PicklingError) as caught:
        Parallel(n_jobs=2)(delayed(id)(lock) for _ in range(2))
    assert "prefer='threads'" in str(caught.value)
    assert isinstance(caught.value.__cause__, TypeError)
    # Threads share the object.
    assert len(Parallel(n_jobs=2, prefer="threads")(delayed(id)(lock) for _ in range(2))) == 2


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_a_worker_exiting_raises_a_clear_error_and_the_pool_recovers(backend: str) -> None:
    with pytest.raises(WorkerDiedError, match="exited with status 1") as caught:
        Parallel(n_jobs=2, backend=backend, batch_size=1)(delayed(exit_on)(i, 1) for i in range(4))
    assert caught.value.exit_codes == (1,)
    assert isinstance(caught.value, RuntimeError)
    assert Parallel(n_jobs=2, backend=backend)(delayed(square)(i) for i in range(3)) == [0, 1, 4]


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_a_killed_worker_raises_a_clear_error_and_the_pool_recovers(backend: str) -> None:
    with pytest.raises(WorkerDiedError, match=r"SIGKILL.*out-of-memory") as caught:
        Parallel(n_jobs=2, backend=backend, batch_size=1)(delayed(sigkill_on)(i, 1) for i in range(4))
    assert caught.value.exit_codes == (-signal.SIGKILL,)
    assert Parallel(n_jobs=2, backend=backend)(delayed(square)(i) for i in range(3)) == [0, 1, 4]


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_timeout_raises_timeout_error(backend: str) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        Parallel(n_jobs=2, backend=backend, timeout=0.5, batch_size=1)(
            delayed(sleep_then_return)(delay, i) for i, delay in enumerate([0.0, 3.0, 0.0])
        )
    assert isinstance(caught.value, ParallelTimeoutError)
    assert "timeout=0.5" in str(caught.value)
    assert time.monotonic() - started < 2.5
    assert Parallel(n_jobs=2, backend=backend)(delayed(square)(i) for i in range(3)) == [0, 1, 4]


def test_queued_tasks_do_not_count_towards_the_timeout() -> None:
    # Four 0.3 s tasks on two workers take 0.6 s; no task runs longer than 0.5 s.
    results = Parallel(n_jobs=2, timeout=0.5, batch_size=1, pre_dispatch="all")(
        delayed(sleep_then_return)(0.3, i) for i in range(4)
    )
    assert results == [0, 1, 2, 3]


CTRL_C_SCRIPT = """
    import sys, time
    from zoblib.parallel import Parallel, delayed

    def slow(i):
        time.sleep(60)
        return i

    if __name__ == "__main__":
        def announce():
            for i in range(100):
                if i == 2:
                    print("running", flush=True)
                yield delayed(slow)(i)
        try:
            Parallel(n_jobs=2, batch_size=1)(announce())
        except KeyboardInterrupt:
            print("interrupted", flush=True)
"""


def test_ctrl_c_stops_the_workers_promptly(tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(textwrap.dedent(CTRL_C_SCRIPT))
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "running"
        time.sleep(1.0)  # let the workers start their tasks
        workers = psutil.Process(process.pid).children(recursive=True)
        assert workers
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        process.kill()
    assert "interrupted" in stdout, stderr
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive


def test_exit_codes_are_described_in_words() -> None:
    assert "segmentation fault" in describe_exit_codes((-signal.SIGSEGV,))
    assert "out-of-memory" in describe_exit_codes((-signal.SIGKILL,))
    assert "exited with status 3" in describe_exit_codes((3,))
    assert "unknown" in describe_exit_codes(())
