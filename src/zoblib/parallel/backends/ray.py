"""The ``'ray'`` backend: batches run as tasks of a ray cluster.

Only the engine is ray's: ``Parallel`` still batches, pickles, orders results, raises the tasks'
own exceptions and enforces timeouts. Each batch is one ray task (a remote function, not an
actor: ray reuses its worker processes between tasks, and a task that kills its worker takes
no pool down with it) whose argument is the batch pickled by zoblib.

Big numpy arrays travel as they do with loky and dask: written once to the call's temporary
folder and memory-mapped by the workers (see :mod:`zoblib.parallel.arrays`), not through ray's
object store. Measured side by side (``benchmarks/bench_distributed.py --size-mib 1024``, quiet
2-core machine; see ``benchmarks/README.md``), plain ray with ``ray.put`` is faster (the folder
path took 1.23x as long for one 1 GiB argument, 1.47x for 16 results of 128 MiB) but grew the
driver by 2 GiB for the argument where the folder grew it by under 1 MiB, and its results are
read-only zero-copy views (the known pain of ``ray.util.joblib``), where zoblib's are ordinary
writable arrays. Against ``ray.util.joblib`` itself the folder path was 4.7x and 2.1x faster.
The folder stays the default for that memory and that writability; an object-store path for
big arrays is left open. For nodes on other
machines, ``parallel_config(store=...)`` (a shared folder or an fsspec URL) carries them as it
does for dask; without one, as with dask, big arrays are pickled with the batches (which ray
moves through its object store) and an :class:`~zoblib.errors.ArraysThroughEngineWarning` says
so once per cluster. ``shared_filesystem=`` overrides the guess, as for dask.

A ray task waiting for other tasks gives its CPU back only while it waits in ``ray.get`` on
its own thread, which ``Parallel``'s loop does not call. So that a task's own ``Parallel``
calls cannot deadlock a cluster whose CPUs all run such tasks, the batches of those nested
calls ask ray for no CPU: they borrow the one of the task that waits for them.

``ray`` is imported by this module only, when the backend is first used.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, ClassVar

from zoblib.errors import ArraysThroughEngineWarning, UnknownBackendError, WorkerDiedError
from zoblib.parallel.backends.base import A, ParallelBackendBase, R
from zoblib.parallel.backends.futures import copy_outcome
from zoblib.parallel.config import NESTED_BACKEND, array_store, convert_n_jobs, get_active_config

try:
    # As Any: ray's API is partly untyped, which strict mypy refuses to call.
    ray: Any = importlib.import_module("ray")
    ray_exceptions: Any = importlib.import_module("ray.exceptions")
except ImportError as exc:  # pragma: no cover - exercised in an environment without ray
    raise UnknownBackendError(
        "Invalid backend: 'ray' needs ray, which is not installed: pip install ray"
    ) from exc

#: Options of every batch's ray task: a batch whose worker died is not run again behind the
#: caller's back (ray's default retries it 3 times), as loky and dask report it at once.
TASK_OPTIONS: Mapping[str, Any] = {"max_retries": 0}

#: How long an abort waits for ray to settle the tasks it cancelled (their workers killed).
ABORT_WAIT_SECONDS = 10.0


def run_in_ray_task(function: Callable[[A], R], argument: A) -> R:
    """Run one batch in a ray worker, its tasks' own ``Parallel`` calls on the same cluster."""
    token = NESTED_BACKEND.set("ray")
    try:
        return function(argument)
    finally:
        NESTED_BACKEND.reset(token)


_remote_batch: Any = ray.remote(run_in_ray_task)


class RayBackend(ParallelBackendBase):
    """Run the batches of ``Parallel`` calls on a ray cluster.

    Parameters
    ----------
    address
        The cluster to connect to when ray is not initialised yet in this process, as for
        ``ray.init(address=...)``. The default does what ``ray.init()`` does: join the
        cluster named by ``$RAY_ADDRESS`` or started on this machine by ``ray start``, else
        start a local one with a worker per CPU (as ``ray.util.joblib`` does). A cluster
        already initialised (``ray.init(...)`` called by the program) is used as it is.
    ray_remote_args
        Options of every batch's task (``num_cpus=``, ``resources=``, ``runtime_env=``...),
        passed to ray's ``.options()``, as ``ray.util.joblib`` takes them.
    shared_filesystem
        Whether the nodes read this machine's files (the call's temporary folder). ``None``
        (default): when every live node is this machine. ``False`` sends big arrays inside the
        batches (through ray's object store) unless a ``store=`` is given; ``True`` trusts
        nodes elsewhere to mount ``temp_folder=``.

    Raises
    ------
    TypeError
        When ``ray_remote_args`` is not a mapping.

    Examples
    --------
    Starting ray takes seconds, so this example is not run as a doctest (the tests run it):

    >>> import ray  # doctest: +SKIP
    >>> from zoblib.parallel import Parallel, delayed, parallel_config
    >>> ray.init(num_cpus=2, include_dashboard=False)  # doctest: +SKIP
    >>> with parallel_config(backend="ray"):  # doctest: +SKIP
    ...     Parallel()(delayed(abs)(-i) for i in range(3))
    [0, 1, 2]
    """

    name: ClassVar[str] = "ray"
    supports_shared_folder: ClassVar[bool] = True
    supports_abort_running: ClassVar[bool] = True
    default_n_jobs: ClassVar[int] = -1

    def __init__(
        self,
        address: str | None = None,
        *,
        ray_remote_args: Mapping[str, Any] | None = None,
        shared_filesystem: bool | None = None,
    ) -> None:
        if ray_remote_args is not None and not isinstance(ray_remote_args, Mapping):
            raise TypeError(f"ray_remote_args must be a mapping, got `{type(ray_remote_args).__name__}`")
        self.address = address
        self.ray_remote_args = dict(ray_remote_args or {})
        self.shared_filesystem = shared_filesystem
        self._pending: set[Any] = set()  # ray.ObjectRef objects
        self._lock = threading.Lock()

    def with_options(self, options: Mapping[str, Any]) -> RayBackend:
        """Return a ray backend with these options replacing this one's."""
        if not options:
            return self
        current = {
            "address": self.address,
            "ray_remote_args": self.ray_remote_args,
            "shared_filesystem": self.shared_filesystem,
        }
        return RayBackend(**{**current, **options})

    def effective_n_jobs(self, n_jobs: int) -> int:
        """Count negative ``n_jobs`` from the cluster's CPUs (``-1``: all of them).

        Also decides, from the nodes' addresses, whether they read this machine's files
        (``supports_shared_folder``): each call asks it before it starts.
        """
        count = convert_n_jobs(n_jobs)
        _connect(self.address)
        self._decide_array_transfer()
        if count >= 1:
            return count
        cpus = int(ray.cluster_resources().get("CPU", 1))
        return max(cpus + 1 + count, 1)

    def _decide_array_transfer(self) -> None:
        """Send big arrays by the temporary folder only to nodes that read it; else say so once."""
        remote = remote_nodes() if self.shared_filesystem is None else []
        shared = self.shared_filesystem if self.shared_filesystem is not None else not remote
        # An instance attribute over the class's: this cluster's answer, asked by each call.
        self.supports_shared_folder = shared  # type: ignore[misc]
        if shared or array_store(get_active_config()) is not None:
            return  # the folder, or the store= every node reads, carries the arrays
        cluster = str(ray.get_runtime_context().gcs_address)
        with _warned_lock:
            if cluster in _warned_clusters:
                return
            _warned_clusters.add(cluster)
        where = (
            f"ray nodes {', '.join(remote[:3])} run on other machines"
            if remote
            else "shared_filesystem=False: the ray nodes do not read this machine's files"
        )
        warnings.warn(
            f"{where}, so big numpy arguments and results go through ray, pickled with each "
            "batch (through its object store). Give a store every node reads, "
            "parallel_config(backend='ray', store='s3://bucket/prefix' or '/shared/dir'), to "
            "send them by reference. Said once per cluster.",
            ArraysThroughEngineWarning,
            stacklevel=5,
        )

    def start(self, n_jobs: int, worker_env: Mapping[str, str]) -> None:
        """Connect to the cluster (or start a local one) unless this process already is."""
        _connect(self.address)

    def submit(self, function: Callable[[A], R], argument: A) -> Future[R]:
        """Send ``function(argument)`` to the cluster as one task."""
        options = {**TASK_OPTIONS, **self.ray_remote_args}
        if _in_ray_task():
            options["num_cpus"] = 0  # borrow the CPU of the task waiting for this one
        ref = _remote_batch.options(**options).remote(function, argument)
        future: Future[R] = Future()
        with self._lock:
            self._pending.add(ref)
        ref.future().add_done_callback(lambda done: self._settle(future, ref, done))
        return future

    def _settle(self, future: Future[Any], ref: Any, done: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(ref)
        copy_outcome(done, future)

    def stop(self) -> None:
        """Nothing to release: the cluster stays for the next call."""

    def abort(self) -> None:
        """Cancel the queued batches and kill the workers running the others (``force=True``).

        Returns once ray has settled the cancelled tasks (at most :data:`ABORT_WAIT_SECONDS`),
        so that the next call's batches are not handed to a worker that is still being killed;
        the killed worker processes may exit a moment after that.
        """
        with self._lock:
            pending, self._pending = list(self._pending), set()
        for ref in pending:
            # A task that ended meanwhile cannot be cancelled any more, which is fine.
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if pending:
            with contextlib.suppress(Exception):
                ray.wait(pending, num_returns=len(pending), timeout=ABORT_WAIT_SECONDS, fetch_local=False)

    def worker_failure(self, error: BaseException) -> WorkerDiedError | None:
        """Translate ray's "the worker or its node died" errors into :class:`~zoblib.WorkerDiedError`."""
        died = (
            ray_exceptions.WorkerCrashedError,
            ray_exceptions.NodeDiedError,
            ray_exceptions.LocalRayletDiedError,
        )
        if not isinstance(error, died):
            return None
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return WorkerDiedError(
            f"A worker process of the 'ray' backend died while running a batch ({first_line}). "
            "ray starts new workers; the other batches of the call were cancelled."
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(address={self.address!r})"


_connect_lock = threading.Lock()
_warned_lock = threading.Lock()
_warned_clusters: set[str] = set()


def remote_nodes() -> list[str]:
    """The addresses, sorted, of the cluster's live nodes that are not this machine's."""
    here = ray.util.get_node_ip_address()
    return sorted({node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive")} - {here})


def _connect(address: str | None) -> None:
    """Initialise ray in this process once: the given cluster, else ray's default choice."""
    with _connect_lock:
        if not ray.is_initialized():
            # log_to_driver stays ray's default (True): the tasks' prints reach this process.
            ray.init(address=address)


def _in_ray_task() -> bool:
    """Tell whether this code runs inside a ray task (a nested ``Parallel`` call)."""
    return bool(ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE)
