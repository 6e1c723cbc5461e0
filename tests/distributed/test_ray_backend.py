"""``backend="ray"`` on a real local ray cluster of two CPUs (``ray.init(num_cpus=2)``)."""

from __future__ import annotations

import builtins
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray): no wheel for this Python?")

import joblib  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402

import zoblib  # noqa: E402
from zoblib.errors import (  # noqa: E402
    ArraysThroughEngineWarning,
    ParallelTimeoutError,
    UnknownBackendError,
    WorkerDiedError,
)
from zoblib.parallel import (  # noqa: E402
    Parallel,
    delayed,
    effective_n_jobs,
    parallel_backend,
    parallel_config,
)
from zoblib.parallel.backends.ray import RayBackend  # noqa: E402
from zoblib.parallel.store import ARRAYS_FOLDER, clear_store, content_name  # noqa: E402

pytestmark = pytest.mark.timeout(90)

#: How long a worker that ray was told to kill may take to exit after the call has raised.
KILLED_WORKER_GRACE_SECONDS = 3.0


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    if ray.is_initialized():  # pragma: no cover - another module left one running
        ray.shutdown()
    # The workers import this module to run its functions: from its folder.
    here = os.path.dirname(os.path.abspath(__file__))
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}}
    # ray's driver replaces builtins.print with its tqdm_ray.safe_print (RAY_TQDM_PATCH_PRINT)
    # and leaves it so after shutdown: later tests that pickle print would see ray's function.
    own_print = builtins.print
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
    try:
        yield
    finally:
        ray.shutdown()
        builtins.print = own_print


# -- what the tasks run (module level: the workers import them) ------------------------------


class TaskFailed(ValueError):
    pass


def where() -> tuple[int, str]:
    return os.getpid(), ray.get_runtime_context().get_task_name() or ""


def fail_on(value: int, bad: int) -> int:
    if value == bad:
        raise TaskFailed(f"task {value} refused")
    return value


def describe(array: np.ndarray[Any, Any]) -> tuple[bool, str, bool, float]:
    name = str(getattr(array, "filename", ""))
    return isinstance(array, np.memmap), name, bool(array.flags.writeable), float(array.sum())


def inner_places(n: int) -> tuple[int, set[int]]:
    # A Parallel call inside a task: it must run on the cluster, whose two CPUs both run
    # outer tasks, without deadlock.
    places = Parallel(n_jobs=2)(delayed(where)() for _ in range(n))
    return n, {pid for pid, _ in places}


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def slow_square(x: int, delay: float) -> int:
    time.sleep(delay)
    return x * x


def sleep_then_mark(path: str, delay: float) -> None:
    Path(path + ".pid").write_text(str(os.getpid()))
    time.sleep(delay)
    Path(path).write_text("ran to the end")


def process_is_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie not yet reaped by its parent counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "\nState:\tZ" in status


# -- choosing the backend and the cluster --------------------------------------------------------


def test_runs_on_the_cluster() -> None:
    with parallel_config(backend="ray"):
        places = Parallel()(delayed(where)() for _ in range(8))
    assert os.getpid() not in {pid for pid, _ in places}
    assert all(name == "run_in_ray_task" for _, name in places)


def test_parallel_backend_n_jobs_and_remote_args() -> None:
    with parallel_backend("ray") as (backend, n_jobs):
        assert isinstance(backend, RayBackend) and n_jobs == -1
        assert effective_n_jobs(-1) == 2
        assert effective_n_jobs(-2) == 1
        assert effective_n_jobs(5) == 5
    with pytest.raises(TypeError, match="ray_remote_args must be a mapping"):
        RayBackend(ray_remote_args=[("name", "x")])  # type: ignore[arg-type]
    # ray_remote_args reach the task's .options(): here its name.
    with parallel_config(backend="ray", ray_remote_args={"name": "zoblib-named"}):
        places = Parallel(n_jobs=2)(delayed(where)() for _ in range(3))
    assert {name for _, name in places} == {"zoblib-named"}


def test_missing_ray_names_the_package() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["ray"] = None  # as if it were not installed
        from zoblib.parallel import parallel_config
        from zoblib.errors import UnknownBackendError
        try:
            parallel_config("ray").__enter__()
        except UnknownBackendError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install ray" in done.stdout
    assert issubclass(UnknownBackendError, ValueError)


# -- arrays by reference, results writable -----------------------------------------------------


def test_big_arrays_travel_as_memmaps_and_are_removed(tmp_path: Path) -> None:
    big = np.arange(300_000, dtype=np.float64)
    with parallel_config(backend="ray", temp_folder=str(tmp_path), max_nbytes="1M"):
        seen = Parallel()(delayed(describe)(big) for _ in range(4))
        copied = Parallel(mmap_mode="c")(delayed(describe)(big) for _ in range(2))
        small = Parallel()(delayed(describe)(big[:10]) for _ in range(2))
    # mmap_mode="r" (the default): read-only maps of one file, as with loky.
    assert all(
        is_memmap and name.startswith(str(tmp_path)) and not writable for is_memmap, name, writable, _ in seen
    )
    assert {total for *_, total in seen} == {float(big.sum())}
    assert all(writable for _, _, writable, _ in copied)  # "c": private copy-on-write pages
    assert not any(is_memmap for is_memmap, *_ in small)
    assert list(tmp_path.iterdir()) == []  # the call's folder went away with it


def test_a_store_takes_arguments_once_and_results(tmp_path: Path) -> None:
    # store= works with ray as with dask: arrays named by content, kept after the call.
    store, scratch = tmp_path / "store", tmp_path / "scratch"
    big = np.arange(300_000, dtype=np.float64)
    with parallel_config(backend="ray", store=str(store), temp_folder=str(scratch), max_nbytes="1M"):
        seen = Parallel()(delayed(describe)(big) for _ in range(3))
        again = Parallel()(delayed(describe)(big.copy()) for _ in range(2))
        doubled = Parallel()(delayed(np.multiply)(big, 2.0) for _ in range(2))
    expected = str(store / ARRAYS_FOLDER / content_name(big))
    assert set(seen + again) == {(True, expected, False, float(big.sum()))}
    for result in doubled:
        assert type(result) is np.ndarray and result.flags.writeable
        np.testing.assert_array_equal(result, big * 2.0)
    assert sorted(os.listdir(store / ARRAYS_FOLDER)) == sorted({content_name(big), content_name(big * 2.0)})
    assert not scratch.exists() or list(scratch.iterdir()) == []  # no temporary folder used
    assert clear_store(store) == 2


def test_nodes_without_this_machines_files_get_arrays_through_ray(tmp_path: Path) -> None:
    # As dask: nodes that do not read the temporary folder (here: said so) get big arrays
    # inside the batches, through ray's object store, with one warning per cluster.
    big = np.arange(300_000, dtype=np.float64)
    config = {"backend": "ray", "temp_folder": str(tmp_path), "max_nbytes": "1M", "shared_filesystem": False}
    with parallel_config(**config), pytest.warns(ArraysThroughEngineWarning, match="shared_filesystem=False"):
        seen = Parallel()(delayed(describe)(big) for _ in range(3))
    assert set(seen) == {(False, "", True, float(big.sum()))}  # copies, not maps of a file
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per cluster
        with parallel_config(**config):
            doubled = Parallel()(delayed(np.multiply)(big, 2.0) for _ in range(2))
    for result in doubled:
        assert type(result) is np.ndarray and result.flags.writeable
        np.testing.assert_array_equal(result, big * 2.0)
    assert list(tmp_path.iterdir()) == []  # the folder was not used


@pytest.mark.parametrize("max_nbytes", ["1M", None], ids=["by-reference", "through-ray"])
def test_returned_arrays_are_writable(tmp_path: Path, max_nbytes: str | None) -> None:
    # ray.util.joblib hands back read-only zero-copy views of its object store; zoblib does not.
    with parallel_config(backend="ray", temp_folder=str(tmp_path), max_nbytes=max_nbytes):
        results = Parallel()(delayed(np.full)(300_000, i, dtype=np.float64) for i in range(3))
    assert [float(result[0]) for result in results] == [0.0, 1.0, 2.0]
    for result in results:
        assert result.flags.writeable and type(result) is np.ndarray
        result[0] = -1.0
    assert list(tmp_path.iterdir()) == []


# -- parity with loky -------------------------------------------------------------------------


@pytest.mark.parametrize("return_as", ["generator", "generator_unordered"])
def test_generators(return_as: str) -> None:
    with parallel_config(backend="ray"):
        results = Parallel(return_as=return_as)(delayed(slow_square)(i, 0.01) for i in range(10))
        assert not isinstance(results, list)
        got = list(results)
    expected = [i * i for i in range(10)]
    assert got == expected if return_as == "generator" else sorted(got) == expected


def test_task_exception_keeps_its_type() -> None:
    with parallel_config(backend="ray"), pytest.raises(TaskFailed, match="task 3 refused") as caught:
        Parallel()(delayed(fail_on)(i, 3) for i in range(6))
    assert any("worker process" in note for note in getattr(caught.value, "__notes__", []))


def test_timeout_stops_the_running_tasks(tmp_path: Path) -> None:
    marks = [tmp_path / f"mark{i}" for i in range(2)]
    started = time.monotonic()
    with parallel_config(backend="ray"), pytest.raises(ParallelTimeoutError, match="workers stopped"):
        Parallel(timeout=1.0, batch_size=1)(delayed(sleep_then_mark)(str(mark), 4.0) for mark in marks)
    assert time.monotonic() - started < 3.5
    # The workers running its tasks are killed (ray keeps a worker that finished a task alive,
    # for the next one). abort() waits until ray has settled the cancelled tasks; the killed
    # processes themselves may exit a moment later (seen once in CI), hence the grace period.
    pids = [int(Path(f"{mark}.pid").read_text()) for mark in marks if Path(f"{mark}.pid").exists()]
    grace_ends = time.monotonic() + KILLED_WORKER_GRACE_SECONDS
    while not all(process_is_gone(pid) for pid in pids) and time.monotonic() < grace_ends:
        time.sleep(0.05)
    assert pids and all(process_is_gone(pid) for pid in pids), pids
    time.sleep(4.0)
    assert not any(mark.exists() for mark in marks)  # killed, not left to finish
    with parallel_config(backend="ray"):
        assert Parallel()(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]


def test_verbose_reports_progress(capsys: pytest.CaptureFixture[str]) -> None:
    with parallel_config(backend="ray"):
        Parallel(verbose=10)(delayed(abs)(i) for i in range(4))
    err = capsys.readouterr().err
    assert "Using backend ray with 2 concurrent workers" in err
    assert "Done" in err


def test_nested_calls_run_on_the_cluster() -> None:
    with parallel_config(backend="ray"):
        # Both CPUs run outer tasks waiting for inner ones: without the inner batches
        # borrowing their CPU this deadlocks, which the timeout turns into a failure. The inner
        # batches need new ray worker processes (both running ones are busy), each seconds to
        # start on a loaded machine: the timeout catches a deadlock, not slowness.
        results = Parallel(batch_size=1, timeout=120)(delayed(inner_places)(n) for n in (3, 4))
    assert [n for n, _ in results] == [3, 4]
    assert all(os.getpid() not in pids for _, pids in results)


def test_killed_worker_is_worker_died_error() -> None:
    with parallel_config(backend="ray"), pytest.raises(WorkerDiedError, match="'ray' backend died"):
        Parallel()(delayed(kill_self)() for _ in range(2))
    with parallel_config(backend="ray"):
        assert Parallel()(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]


# -- scikit-learn through joblib's API --------------------------------------------------------


class RecordingRidge(Ridge):
    """A Ridge whose fits leave a file naming the ray task they ran in ("" outside ray)."""

    def __init__(self, alpha: float = 1.0, log_dir: str = "") -> None:
        super().__init__(alpha=alpha)
        self.log_dir = log_dir

    def fit(self, X: Any, y: Any) -> RecordingRidge:
        in_worker = ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE
        task = ray.get_runtime_context().get_task_name() if in_worker else ""
        (Path(self.log_dir) / f"fit-{os.getpid()}-{time.monotonic_ns()}").write_text(task or "")
        super().fit(X, y)
        return self


def test_cross_val_score_runs_on_ray_through_the_joblib_bridge(tmp_path: Path) -> None:
    zoblib.register_joblib_backend()
    rng = np.random.default_rng(0)
    X = rng.random((120, 5))
    y = X @ np.arange(5.0) + 0.01 * rng.random(120)
    expected = cross_val_score(Ridge(), X, y, cv=4)
    with joblib.parallel_config(backend="zoblib", n_jobs=2, zoblib_backend="ray"):
        scores = cross_val_score(RecordingRidge(log_dir=str(tmp_path)), X, y, cv=4)
    np.testing.assert_allclose(scores, expected)
    fits = [path.read_text() for path in tmp_path.iterdir()]
    assert fits == ["run_in_ray_task"] * 4  # every fold fitted in a ray task
