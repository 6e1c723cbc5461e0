"""The ``'dask'`` backend: batches run as tasks of a ``dask.distributed`` cluster.

Only the engine is dask's: ``Parallel`` still batches, pickles, orders results, raises the
tasks' own exceptions and enforces timeouts. Each batch is one dask task whose argument is the
batch pickled by zoblib, so big numpy arrays travel by reference, never through the scheduler:

- with ``parallel_config(store=...)`` (a folder every worker mounts, or an ``s3://``... URL)
  through that content-named store (:mod:`zoblib.parallel.store`), whatever the cluster;
- else, for workers on this machine (a ``LocalCluster``), as with loky: written once to the
  call's temporary folder and memory-mapped by the workers (:mod:`zoblib.parallel.arrays`);
- else (workers on other machines, told by their addresses: :func:`remote_workers`) through
  dask's own transfer, pickled with each batch, with an :class:`ArraysThroughEngineWarning`
  once per cluster. ``shared_filesystem=True`` says the workers mount the temporary folder
  (``temp_folder=``) after all; ``shared_filesystem=False`` treats any cluster as remote.

A task's own ``Parallel`` calls run on the same cluster: the task leaves its worker's thread
pool while it waits (``distributed.secede``), so a cluster whose threads all wait on nested
calls still has threads to run them, and takes its place back when the inner call ends.

``distributed`` is imported by this module only, when the backend is first used.
"""

from __future__ import annotations

import importlib
import ipaddress
import socket
import threading
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, ClassVar

from zoblib.errors import (
    ArraysThroughEngineWarning,
    DaskClientError,
    UnknownBackendError,
    WorkerDiedError,
)
from zoblib.parallel.backends.base import A, ParallelBackendBase, R
from zoblib.parallel.backends.futures import copy_outcome
from zoblib.parallel.config import NESTED_BACKEND, convert_n_jobs, get_active_config
from zoblib.parallel.shared_objects import sharing

__all__ = ["DaskBackend", "DaskClientError", "remote_workers", "run_in_dask_task"]

try:
    # As Any: most of distributed's API is untyped, which strict mypy refuses to call.
    distributed: Any = importlib.import_module("distributed")
    thread_state: Any = importlib.import_module("distributed.worker").thread_state
except ImportError as exc:  # pragma: no cover - exercised in an environment without dask
    raise UnknownBackendError(
        "Invalid backend: 'dask' needs dask.distributed, which is not installed: "
        'pip install "dask[distributed]"'
    ) from exc

#: joblib's default: seconds to wait for a first worker of a cluster that has none yet.
WAIT_FOR_WORKERS_TIMEOUT = 10.0


def run_in_dask_task(function: Callable[[A], R], argument: A, scattered: Sequence[Any] = ()) -> R:
    """Run one batch in a dask worker, its tasks' own ``Parallel`` calls on the same cluster.

    ``scattered`` are the worker's copies of the backend's ``scatter=`` objects (dask turns
    the futures passed for them into their values), which the batch names by position.
    """
    token = NESTED_BACKEND.set("dask")
    try:
        with sharing(scattered):
            return function(argument)
    finally:
        NESTED_BACKEND.reset(token)


def _probe() -> None:
    """A no-op task: its completion tells that the cluster has a worker."""


class DaskBackend(ParallelBackendBase):
    """Run the batches of ``Parallel`` calls on a ``dask.distributed`` cluster.

    Parameters
    ----------
    client
        The ``distributed.Client`` to submit to; default: the one in scope
        (``distributed.get_client()``: the latest client made, or the worker's own inside a
        task).
    scheduler_host
        Instead of ``client``, the address of a scheduler to connect to (one client per
        address and process, kept for later calls).
    scatter
        As joblib's: objects sent to every worker once (``Client.scatter(..., broadcast=True)``,
        when the backend first starts a call), which batches then name instead of carrying:
        a big model or DataFrame passed to every task. Numpy arrays do not need it (big ones
        travel by reference through the temporary folder or the ``store=``); an array listed
        here goes through dask instead, as asked.
    wait_for_workers_timeout
        Seconds to wait for a first worker when the cluster has none (0: do not wait).
    shared_filesystem
        Whether the workers read this machine's files (the call's temporary folder). ``None``
        (default): when all of them run on this machine. ``False`` sends big arrays through
        dask unless a ``store=`` is given; ``True`` trusts workers elsewhere to mount
        ``temp_folder=``.
    **submit_kwargs
        Passed on to ``Client.submit`` for every batch (``resources=``, ``priority=``,
        ``retries=``...), as joblib's dask backend does.

    Raises
    ------
    DaskClientError
        When no client is given and none is in scope.
    TypeError
        When ``scatter`` is not a list or tuple.

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> from zoblib.parallel import Parallel, delayed, parallel_config
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
    ...     with Client(cluster) as client, parallel_config(backend="dask"):
    ...         Parallel()(delayed(abs)(-i) for i in range(3))
    [0, 1, 2]
    """

    name: ClassVar[str] = "dask"
    supports_shared_folder: ClassVar[bool] = True
    default_n_jobs: ClassVar[int] = -1

    def __init__(
        self,
        client: Any = None,
        *,
        scheduler_host: str | None = None,
        scatter: list[Any] | tuple[Any, ...] | None = None,
        wait_for_workers_timeout: float = WAIT_FOR_WORKERS_TIMEOUT,
        shared_filesystem: bool | None = None,
        **submit_kwargs: Any,
    ) -> None:
        if scatter is not None and not isinstance(scatter, list | tuple):
            raise TypeError(f"scatter must be a list/tuple, got `{type(scatter).__name__}`")
        self.client = client if client is not None else _find_client(scheduler_host)
        self.scheduler_host = scheduler_host
        self.scatter = list(scatter or ())
        self.wait_for_workers_timeout = wait_for_workers_timeout
        self.shared_filesystem = shared_filesystem
        self.submit_kwargs = dict(submit_kwargs)
        self._pending: set[Any] = set()  # distributed.Future objects
        self._lock = threading.Lock()
        self._seceded_thread: int | None = None
        self._scattered: list[Any] | None = None  # the futures of self.scatter, once sent

    def with_options(self, options: Mapping[str, Any]) -> DaskBackend:
        """Return a dask backend with these options replacing this one's."""
        if not options:
            return self
        current = {
            "client": self.client,
            "scatter": self.scatter,
            "wait_for_workers_timeout": self.wait_for_workers_timeout,
            "shared_filesystem": self.shared_filesystem,
            **self.submit_kwargs,
        }
        return DaskBackend(**{**current, **options})

    def effective_n_jobs(self, n_jobs: int) -> int:
        """Count negative ``n_jobs`` from the cluster's threads (``-1``: all of them).

        Also decides, from the workers' addresses, whether they read this machine's files
        (``supports_shared_folder``): each call asks it before it starts.
        """
        count = convert_n_jobs(n_jobs)
        threads = self._cluster_threads()
        return count if count >= 1 else max(threads + 1 + count, 1)

    def _cluster_threads(self) -> int:
        threads: dict[str, int] = self.client.nthreads()
        if not threads and self.wait_for_workers_timeout:
            try:
                self.client.submit(_probe, pure=False).result(timeout=self.wait_for_workers_timeout)
            except TimeoutError as exc:
                raise DaskClientError(
                    f"the dask cluster of {self.client!r} has no worker after "
                    f"{self.wait_for_workers_timeout} s: start workers connected to its "
                    "scheduler, or wait longer with "
                    "parallel_config(backend='dask', wait_for_workers_timeout=...)"
                ) from exc
            threads = self.client.nthreads()
        self._decide_array_transfer(list(threads))
        return sum(threads.values())

    def _decide_array_transfer(self, addresses: list[str]) -> None:
        """Send big arrays by the temporary folder only to workers that read it; else say so once."""
        remote = remote_workers(addresses) if self.shared_filesystem is None else []
        shared = self.shared_filesystem if self.shared_filesystem is not None else not remote
        # An instance attribute over the class's: this cluster's answer, asked by each call.
        self.supports_shared_folder = shared  # type: ignore[misc]
        if shared or get_active_config().get("store") is not None:
            return
        cluster = str(getattr(self.client.scheduler, "address", self.client))
        with _warned_lock:
            if cluster in _warned_clusters:
                return
            _warned_clusters.add(cluster)
        where = (
            f"dask workers {', '.join(remote[:3])} run on other machines"
            if remote
            else ("shared_filesystem=False: the dask workers do not read this machine's files")
        )
        warnings.warn(
            f"{where}, so big numpy arguments and results go through dask, pickled with each "
            "batch (through the scheduler's and workers' memory). Give a store every worker "
            "reads, parallel_config(backend='dask', store='s3://bucket/prefix' or "
            "'/shared/dir'), to send them by reference. Said once per cluster.",
            ArraysThroughEngineWarning,
            stacklevel=5,
        )

    def start(self, n_jobs: int, worker_env: Mapping[str, str]) -> None:
        """Send the ``scatter=`` objects once; leave the worker's thread pool when called from
        inside a task (a nested call)."""
        with self._lock:
            if self.scatter and self._scattered is None:
                # hash=False, as joblib: equal objects scattered by two calls stay two keys.
                self._scattered = list(self.client.scatter(self.scatter, broadcast=True, hash=False))
        if self._seceded_thread is None and hasattr(thread_state, "execution_state"):
            # This task now waits for tasks of the same cluster: without its thread slot
            # given back, a cluster whose threads all wait so would never run them.
            distributed.secede()
            self._seceded_thread = threading.get_ident()

    def submit(self, function: Callable[[A], R], argument: A) -> Future[R]:
        """Send ``function(argument)`` to the cluster as one task."""
        future: Future[R] = Future()
        dask_future = self.client.submit(
            run_in_dask_task,
            function,
            argument,
            self._scattered or [],
            key=f"zoblib-batch-{uuid.uuid4().hex}",
            pure=False,
            **self.submit_kwargs,
        )
        with self._lock:
            self._pending.add(dask_future)
        dask_future.add_done_callback(lambda done: self._settle(future, done))
        return future

    def shared_objects(self) -> Mapping[int, int]:
        """The ``scatter=`` objects, by ``id``, once sent: batches name them by position."""
        if not self._scattered:
            return {}
        return {id(value): position for position, value in enumerate(self.scatter)}

    def _settle(self, future: Future[Any], dask_future: Any) -> None:
        with self._lock:
            self._pending.discard(dask_future)
        copy_outcome(dask_future, future)

    def stop(self) -> None:
        """Take the task's thread slot back if a nested call gave it up; the cluster stays."""
        self._rejoin()

    def abort(self) -> None:
        """Cancel the queued batches; running ones finish on their own (dask cannot stop them)."""
        with self._lock:
            pending, self._pending = list(self._pending), set()
        try:
            if pending:
                self.client.cancel(pending, force=True)
        finally:
            self._rejoin()

    def _rejoin(self) -> None:
        # rejoin() must run in the thread that seceded; a generator collected in another
        # thread leaves that task outside the pool, which costs a thread, not a deadlock.
        if self._seceded_thread is not None and self._seceded_thread == threading.get_ident():
            self._seceded_thread = None
            distributed.rejoin()

    def worker_failure(self, error: BaseException) -> WorkerDiedError | None:
        """Translate dask's ``KilledWorker`` into :class:`~zoblib.WorkerDiedError`."""
        if not isinstance(error, distributed.KilledWorker):
            return None
        return WorkerDiedError(
            f"A worker process of the 'dask' backend died while running a batch ({error}). "
            "dask's nanny restarts workers; the other batches of the call were cancelled."
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client={self.client!r})"


_clients_by_address: dict[str, Any] = {}
#: Schedulers whose workers were said, once, to get arrays through dask.
_warned_clusters: set[str] = set()
_warned_lock = threading.Lock()


def _find_client(scheduler_host: str | None) -> Any:
    if scheduler_host is not None:
        if scheduler_host not in _clients_by_address:
            _clients_by_address[scheduler_host] = distributed.Client(scheduler_host, set_as_default=False)
        return _clients_by_address[scheduler_host]
    try:
        return distributed.get_client()
    except ValueError as exc:
        raise DaskClientError(
            "backend='dask' runs the tasks on a dask.distributed cluster, and there is no "
            "Client in scope: create one first (`from distributed import Client; client = "
            "Client()` for a cluster on this machine, or `Client('scheduler-address:8786')`), "
            "or pass parallel_config(backend='dask', client=client)"
        ) from exc


def remote_workers(addresses: list[str]) -> list[str]:
    """Return, sorted, the worker addresses (``tcp://host:port``...) that are not this machine.

    Examples
    --------
    >>> remote_workers(["tcp://127.0.0.1:4001", "inproc://10.0.0.1/1/2", "tcp://192.0.2.7:4001"])
    ['tcp://192.0.2.7:4001']
    """
    return sorted(address for address in addresses if not _is_local(address))


def _is_local(address: str) -> bool:
    """Tell whether a worker address (``tcp://host:port``, ``inproc://...``) is this machine."""
    protocol, _, rest = address.partition("://")
    if protocol == "inproc":
        return True
    host = rest.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback or host in _local_addresses()
    except ValueError:
        return host in ("localhost", socket.gethostname())


def _local_addresses() -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        return set()
