"""``backend="dask"`` with arrays by reference through a content-named store, and without one.

A real ``LocalCluster`` of two worker processes; S3 is moto's server on loopback. Workers on
other machines cannot be started here: the decision "these workers are remote" is tested on
real addresses, and what follows from it through ``shared_filesystem=False``, which takes the
same path in the backend.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason='dask.distributed is not installed (pip install "dask[distributed]")'
)

import test_dask_backend  # noqa: E402

import zoblib  # noqa: E402
from zoblib import ArraysThroughEngineWarning, DaskClientError, Memory  # noqa: E402
from zoblib.parallel import Parallel, delayed, parallel_config  # noqa: E402
from zoblib.parallel.backends import dask as dask_module  # noqa: E402
from zoblib.parallel.backends.dask import DaskBackend, remote_workers  # noqa: E402
from zoblib.parallel.store import ARRAYS_FOLDER, ArrayStore, clear_store, content_name  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A cluster of two worker processes (one thread each) for this module, and its client."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, **test_dask_backend.NO_DASHBOARD
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


BIG = np.arange(400_000, dtype=np.float64)  # 3.2 MB: over max_nbytes="1M"


# -- what the tasks run (module level: the workers import them) ------------------------------


def inspect_argument(array: np.ndarray[Any, Any]) -> tuple[str, str, bool, float]:
    """What a task received: its type, the file behind it, whether it may write, its sum."""
    filename = str(getattr(array, "filename", "") or "")
    return type(array).__name__, filename, bool(array.flags.writeable), float(array.sum())


def scaled(array: np.ndarray[Any, Any], factor: float) -> np.ndarray[Any, Any]:
    return array * factor


def sleep_then_sum(array: np.ndarray[Any, Any], delay: float) -> float:
    time.sleep(delay)
    return float(array.sum())


def put_when_all_ready(location: str, ready_folder: str, workers: int) -> str:
    """Store the same array from several workers at once (each waits for the others first)."""
    Path(ready_folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 20
    while len(os.listdir(ready_folder)) < workers and time.monotonic() < deadline:
        time.sleep(0.005)
    return ArrayStore(location).put(np.arange(300_000, dtype=np.int64)).target


def counted_square(array: np.ndarray[Any, Any], marks: str, workers: int) -> tuple[int, np.ndarray[Any, Any]]:
    """A cached function's body: leaves one mark per computation, waits for the other workers."""
    Path(marks, f"{os.getpid()}-{time.monotonic_ns()}").touch()
    deadline = time.monotonic() + 20
    while len(os.listdir(marks)) < workers and time.monotonic() < deadline:
        time.sleep(0.005)
    return os.getpid(), array**2


def stored_names(store: Path) -> set[str]:
    folder = store / ARRAYS_FOLDER
    return {entry.name for entry in folder.iterdir()} if folder.exists() else set()


# -- a store in a folder ----------------------------------------------------------------------


def test_folder_store_writes_a_repeated_argument_once(client: Any, tmp_path: Path) -> None:
    store, scratch = tmp_path / "store", tmp_path / "scratch"
    with parallel_config(backend="dask", store=str(store), temp_folder=str(scratch)):
        first = Parallel()(delayed(inspect_argument)(BIG) for _ in range(4))
        written = stored_names(store)
        mtime = (store / ARRAYS_FOLDER / content_name(BIG)).stat().st_mtime_ns
        # A new array object with the same values: the same name, nothing written again.
        second = Parallel()(delayed(inspect_argument)(BIG.copy()) for _ in range(4))
    assert written == {content_name(BIG)}
    assert stored_names(store) == written
    assert (store / ARRAYS_FOLDER / content_name(BIG)).stat().st_mtime_ns == mtime
    expected = str(store / ARRAYS_FOLDER / content_name(BIG))
    assert set(first + second) == {("memmap", expected, False, float(BIG.sum()))}
    assert not scratch.exists() or list(scratch.iterdir()) == []  # no temporary folder used


def test_folder_store_returns_big_results_writable(client: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with parallel_config(backend="dask", store=str(store)):
        results = Parallel()(delayed(scaled)(BIG, factor) for factor in (1.0, 2.0, 3.0))
    for factor, result in zip((1.0, 2.0, 3.0), results, strict=True):
        assert type(result) is np.ndarray and result.flags.writeable
        np.testing.assert_array_equal(result, BIG * factor)
        result[0] = -1.0  # a private copy: the stored archive keeps its content
    # The argument and three results, each named by its content (BIG * 1.0 is BIG).
    assert stored_names(store) == {content_name(BIG * f) for f in (1.0, 2.0, 3.0)}
    assert clear_store(store) == 3
    assert stored_names(store) == set()


def test_concurrent_writers_of_one_name_are_harmless(client: Any, tmp_path: Path) -> None:
    store, ready = tmp_path / "store", tmp_path / "ready"
    ready.mkdir()
    addresses = sorted(client.scheduler_info()["workers"])
    futures = [
        client.submit(put_when_all_ready, str(store), str(ready), 2, workers=[address], pure=False)
        for address in addresses
    ]
    targets = client.gather(futures)
    assert len(set(targets)) == 1
    assert os.listdir(store / ARRAYS_FOLDER) == [Path(targets[0]).name]  # no staging leftovers
    np.testing.assert_array_equal(zoblib.load(targets[0]), np.arange(300_000, dtype=np.int64))


# -- a store on S3 ----------------------------------------------------------------------------


def test_s3_store_numpy_arguments_once_and_results(client: Any, s3: Any) -> None:
    url = s3.url("store")
    fs = s3.filesystem()
    with parallel_config(backend="dask", store=url, storage_options=s3.options):
        seen = Parallel()(delayed(inspect_argument)(BIG) for _ in range(4))
        key = f"{url[len('s3://') :]}/{ARRAYS_FOLDER}/{content_name(BIG)}"
        first_write = fs.info(key, refresh=True)["LastModified"]
        time.sleep(1.1)  # S3 times have one-second resolution: a rewrite would show
        results = Parallel()(delayed(scaled)(BIG, factor) for factor in (2.0, 3.0))
    # Workers get plain numpy arrays, read-only (shared by the worker's batches), not LazyArray.
    assert set(seen) == {("ndarray", "", False, float(BIG.sum()))}
    assert fs.info(key, refresh=True)["LastModified"] == first_write
    for factor, result in zip((2.0, 3.0), results, strict=True):
        assert type(result) is np.ndarray and result.flags.writeable
        np.testing.assert_array_equal(result, BIG * factor)
    names = {path.rsplit("/", 1)[1] for path in fs.ls(key.rsplit("/", 1)[0], refresh=True)}
    assert names == {content_name(BIG), content_name(BIG * 2.0), content_name(BIG * 3.0)}
    assert clear_store(url, s3.options) == 3


def test_s3_store_errors_name_the_url(client: Any, s3: Any) -> None:
    with (
        parallel_config(backend="dask", store="s3://no-such-bucket/data", storage_options=s3.options),
        pytest.raises(zoblib.ArchiveNotFoundError, match=r"s3://no-such-bucket/data/zoblib-arrays/.*bucket"),
    ):
        Parallel()(delayed(inspect_argument)(BIG) for _ in range(2))


def test_storage_options_need_a_url_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only applies to a store at a URL"):
        parallel_config(store=str(tmp_path), storage_options={"anon": True})
    with pytest.raises(ValueError, match="needs store="):
        parallel_config(storage_options={"anon": True})


# -- workers that do not read this machine's files --------------------------------------------


def test_remote_workers_are_told_by_their_addresses(client: Any) -> None:
    own = socket.gethostbyname(socket.gethostname())
    local = [
        "tcp://127.0.0.1:40001",
        "tcp://[::1]:40001",
        "inproc://10.1.2.3/1234/1",
        f"tcp://{own}:40001",
        f"tls://{socket.gethostname()}:40001",
        "tcp://localhost:40001",
    ]
    remote = ["tcp://192.0.2.10:8786", "tls://[2001:db8::1]:8786", "tcp://198.51.100.7:40001"]
    assert remote_workers(local + remote) == sorted(remote)
    # The cluster's real worker addresses: local, so the temporary folder is used.
    backend = DaskBackend(client)
    backend.effective_n_jobs(-1)
    assert remote_workers(list(client.nthreads())) == []
    assert backend.supports_shared_folder is True


def test_remote_cluster_without_store_sends_arrays_through_dask(client: Any, tmp_path: Path) -> None:
    dask_module._warned_clusters.discard(client.scheduler.address)  # "once" starts now
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with parallel_config(backend="dask", shared_filesystem=False, temp_folder=str(tmp_path)):
            seen = Parallel()(delayed(inspect_argument)(BIG) for _ in range(3))
            results = Parallel()(delayed(scaled)(BIG, 2.0) for _ in range(2))
    said = [w for w in caught if issubclass(w.category, ArraysThroughEngineWarning)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert "store=" in str(said[0].message)
    # Pickled with the batch: a writable array of the worker's own, no file behind it.
    assert set(seen) == {("ndarray", "", True, float(BIG.sum()))}
    for result in results:
        np.testing.assert_array_equal(result, BIG * 2.0)
    assert list(tmp_path.iterdir()) == []  # no temporary folder was made


def test_remote_cluster_with_a_store_uses_it_silently(client: Any, tmp_path: Path) -> None:
    dask_module._warned_clusters.discard(client.scheduler.address)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ArraysThroughEngineWarning)
        with parallel_config(backend="dask", shared_filesystem=False, store=str(tmp_path)):
            seen = Parallel()(delayed(inspect_argument)(BIG) for _ in range(2))
    assert {kind for kind, _, _, _ in seen} == {"memmap"}
    assert stored_names(tmp_path) == {content_name(BIG)}


# -- Memory in concurrent tasks, temporary data, the error type, the joblib bridge --------------


def test_memory_entry_written_once_by_concurrent_workers(client: Any, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    cached = Memory(tmp_path / "cache", verbose=0).cache(counted_square)
    argument = np.arange(200_000, dtype=np.float64)
    inodes: set[int] = set()
    stop = threading.Event()

    def watch() -> None:  # the entry's folder: a second publication would be a new inode
        while not stop.is_set():
            for metadata in (tmp_path / "cache").rglob("metadata.json"):
                with contextlib.suppress(FileNotFoundError):
                    inodes.add(metadata.parent.stat().st_ino)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with parallel_config(backend="dask"):
            outcomes = Parallel(batch_size=1)(delayed(cached)(argument, str(marks), 2) for _ in range(2))
    finally:
        stop.set()
        watcher.join()
    # Both workers computed at once (the marks prove it) and both calls succeeded.
    assert len(os.listdir(marks)) == 2
    assert len({pid for pid, _ in outcomes}) == 2
    for _, result in outcomes:
        np.testing.assert_array_equal(result, argument**2)
    entries = list((tmp_path / "cache").rglob("metadata.json"))
    assert len(entries) == 1
    # The watcher may stop before its first look at an entry published at the very end.
    inodes.add(entries[0].parent.stat().st_ino)
    assert len(inodes) == 1
    assert not [p for p in (tmp_path / "cache").rglob("*") if "zoblib-tmp" in p.name or ".staging" in p.name]
    with parallel_config(backend="dask"):  # now a hit everywhere: no computation
        Parallel(batch_size=1)(delayed(cached)(argument, str(marks), 2) for _ in range(2))
    assert len(os.listdir(marks)) == 2


CRASHING_CALLER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from distributed import Client
    from zoblib.parallel import Parallel, delayed, parallel_config
    from test_dask_store import sleep_then_sum

    client = Client(sys.argv[1])
    with parallel_config(backend="dask", temp_folder=sys.argv[2]):
        Parallel()(delayed(sleep_then_sum)(np.arange(400_000.0), 0.5) for _ in range(40))
    """
)


def test_crashed_callers_folder_removed_by_the_next_call(client: Any, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    caller = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CALLER, client.scheduler.address, str(tmp_path)], env=env
    )
    try:
        deadline = time.monotonic() + 30
        while not any((tmp_path).glob("zoblib_parallel_*/*.zarr")) and time.monotonic() < deadline:
            assert caller.poll() is None, "the caller ended before its call was under way"
            time.sleep(0.02)
        leftovers = list(tmp_path.iterdir())
        assert leftovers, "the caller never wrote its arrays"
    finally:
        caller.send_signal(signal.SIGKILL)
        caller.wait(30)
    assert all(path.exists() for path in leftovers)  # a killed caller cleans nothing
    with parallel_config(backend="dask", temp_folder=str(tmp_path)):
        assert Parallel()(delayed(sleep_then_sum)(BIG, 0.0) for _ in range(2)) == [float(BIG.sum())] * 2
    assert list(tmp_path.iterdir()) == []  # the dead caller's folder and this call's own


def test_dask_client_error_moved_to_errors() -> None:
    assert DaskClientError is zoblib.errors.DaskClientError is dask_module.DaskClientError
    assert issubclass(DaskClientError, zoblib.ZoblibError) and issubclass(DaskClientError, ValueError)
    assert "DaskClientError" in zoblib.__all__ and "DaskClientError" in zoblib.errors.__doc__


def test_sklearn_on_dask_through_the_joblib_bridge(client: Any) -> None:
    joblib = pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, cross_val_score

    zoblib.register_joblib_backend()
    features, labels = make_classification(n_samples=1500, n_features=100, random_state=0)  # 1.2 MB
    grid = {"C": [0.01, 0.1, 1.0]}
    reference = GridSearchCV(LogisticRegression(max_iter=200), grid, cv=3, n_jobs=1).fit(features, labels)
    with distributed.get_task_stream(client) as stream:
        with parallel_config(backend="dask"), joblib.parallel_config(backend="zoblib", n_jobs=-1):
            searched = GridSearchCV(LogisticRegression(max_iter=200), grid, cv=3).fit(features, labels)
            scores = cross_val_score(LogisticRegression(max_iter=200), features, labels, cv=4)
        with joblib.parallel_config(backend="zoblib", zoblib_backend="dask", n_jobs=2):
            explicit = cross_val_score(LogisticRegression(max_iter=200), features, labels, cv=4)
    assert searched.best_params_ == reference.best_params_
    np.testing.assert_allclose(
        searched.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"]
    )
    expected = cross_val_score(LogisticRegression(max_iter=200), features, labels, cv=4, n_jobs=1)
    np.testing.assert_allclose(scores, expected)
    np.testing.assert_allclose(explicit, expected)
    batches = [task for task in stream.data if str(task["key"]).startswith("zoblib-batch-")]
    # 9 fits of the search, then 4 + 4 of cross_val_score, joblib's batches on dask's workers.
    assert len(batches) >= 3
    assert {task["worker"] for task in batches} <= set(client.scheduler_info()["workers"])
