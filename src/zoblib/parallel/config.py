"""``parallel_config`` and ``parallel_backend``: defaults for the ``Parallel`` calls of a block.

Settings live in a :class:`contextvars.ContextVar`, so nested blocks override the keys they set
and inherit the others, and a block in one thread does not leak into another. Inside a worker,
the tasks of a call run under a nested configuration: inner calls default to threads (one level
down, sequential deeper) and a fair share of the CPUs (see :func:`worker_context`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from zoblib.errors import BackendOptionError
from zoblib.parallel.cpu import cpu_count

if TYPE_CHECKING:
    from zoblib.parallel.backends.base import ParallelBackendBase
    from zoblib.parallel.store import ArrayStore

T = TypeVar("T")

PREFER_VALUES = (None, "processes", "threads")
REQUIRE_VALUES = (None, "sharedmem")
#: Settings a worker passes on to the calls its tasks make (the others are about the outer call).
INHERITED_IN_WORKERS = (
    "temp_folder",
    "max_nbytes",
    "mmap_mode",
    "inner_max_num_threads",
    "store",
    "storage_options",
)

_NONE_MEANS_UNSET = frozenset({"n_jobs", "backend", "prefer", "require", "temp_folder"})
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_config: ContextVar[Mapping[str, Any]] = ContextVar("zoblib_parallel_config", default=_EMPTY)


@dataclass(frozen=True)
class WorkerShare:
    """What a worker's tasks may use: how deep the nesting is and how many CPUs are theirs."""

    nesting_level: int
    cpus: int


_worker_share: ContextVar[WorkerShare | None] = ContextVar("zoblib_worker_share", default=None)
#: The backend nested calls of a task use, set by an engine whose tasks can run their own calls
#: on the same workers without deadlock (dask seceding); None: the rule in worker_context.
NESTED_BACKEND: ContextVar[str | None] = ContextVar("zoblib_nested_backend", default=None)


class Default(Generic[T]):
    """A default value in a signature, told apart from the same value passed explicitly."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"default({self.value!r})"


def default(value: T) -> T:
    """Mark ``value`` as a signature default that an active ``parallel_config`` may replace."""
    return cast(T, Default(value))


# Module-level defaults (a call in a signature would run once anyway; these say so).
NONE_DEFAULT: None = default(None)
VERBOSE_DEFAULT: int = default(0)
MAX_NBYTES_DEFAULT: str = default("1M")
MMAP_MODE_DEFAULT: str = default("r")
FALSE_DEFAULT: bool = default(False)


def is_default(value: object) -> bool:
    """Tell whether a parameter was left at its ``default(...)``."""
    return isinstance(value, Default)


def setting(name: str, value: T) -> T:
    """Return an argument as given, or else the active configuration's value, or the default.

    For the settings whose ``None`` means "choose for me" (``n_jobs``, ``backend``,
    ``prefer``, ``require``, ``temp_folder``), an explicit None also defers to the
    configuration: libraries pass ``n_jobs=None`` on behalf of users who did not choose.
    """
    if not isinstance(value, Default) and not (value is None and name in _NONE_MEANS_UNSET):
        return value
    active = _config.get()
    if name in active:
        return cast(T, active[name])
    return cast(T, value.value if isinstance(value, Default) else value)


def get_active_config() -> Mapping[str, Any]:
    """Return the settings the enclosing ``parallel_config`` blocks set, as a read-only mapping."""
    return _config.get()


def worker_share() -> WorkerShare | None:
    """Return the CPU share of the worker running the current task, or None outside workers."""
    return _worker_share.get()


def nesting_level() -> int:
    """How deep in nested ``Parallel`` calls the current code runs: 0 outside any worker."""
    share = _worker_share.get()
    return 0 if share is None else share.nesting_level


def available_cpus() -> int:
    """Return the CPUs the current code may use: a worker's share, else :func:`cpu_count`."""
    share = _worker_share.get()
    return share.cpus if share is not None else cpu_count()


def convert_n_jobs(n_jobs: object) -> int:
    """Turn ``n_jobs`` into an int as joblib does: ``int(n_jobs)`` (``'2'`` and ``2.3`` give 2).

    Raises
    ------
    ValueError
        For a string that is not an integer (``'2.3'``, ``'all'``).
    TypeError
        For a value ``int()`` does not take (a list, say).
    """
    if type(n_jobs) is int:
        return n_jobs
    try:
        return int(cast(Any, n_jobs))
    except ValueError:
        raise ValueError(
            f"n_jobs could not be converted to int: got {n_jobs!r}; give an integer or None"
        ) from None
    except TypeError:
        raise TypeError(f"n_jobs must be an integer or None, got {n_jobs!r}") from None


def resolve_n_jobs(n_jobs: object) -> int:
    """Turn joblib's ``n_jobs`` (``-1`` all CPUs, ``-2`` all but one...) into a worker count.

    ``n_jobs`` is first converted with :func:`convert_n_jobs`.

    Raises
    ------
    ValueError
        For ``n_jobs=0`` (or a float below 1, such as ``0.5``) or a string that is not an
        integer.
    """
    count = convert_n_jobs(n_jobs)
    if count == 0:
        raise ValueError(
            f"n_jobs == 0 in Parallel has no meaning (got n_jobs={n_jobs!r}): use n_jobs=1 to "
            "run in this process, -1 for all CPUs"
        )
    if count < 0:
        return max(available_cpus() + 1 + count, 1)
    return count


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_nbytes(value: int | str | None) -> int | None:
    """Read a byte count: an int, None, or a string such as ``'1M'``, ``'100K'``, ``'2G'``."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        if value is not None and value < 0:
            raise ValueError(f"max_nbytes must not be negative, got {value}")
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)B?\s*", value.upper())
        if match:
            return int(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"max_nbytes must be None, an int or a string like '1M', got {value!r}")


#: What joblib calls each choice in its messages ("prefer=x is not a valid backend hint").
_CHOICE_KINDS = {"prefer": "backend hint", "require": "backend constraint"}


def check_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    """Raise ``ValueError`` naming the allowed values when ``value`` is not one of them.

    The text is joblib's (``prefer=wrong is not a valid backend hint, expected one of ...``):
    joblib's own tests, and so perhaps its users, match it.
    """
    if value not in allowed:
        kind = _CHOICE_KINDS.get(name, "value")
        raise ValueError(f"{name}={value} is not a valid {kind}, expected one of {allowed}")


class parallel_config:  # lowercase: joblib's name
    """Set defaults for every ``Parallel`` created inside a ``with`` block.

    Arguments left out keep the value of the enclosing block (or the built-in default); an
    argument given to ``Parallel`` itself wins over the block.

    Parameters
    ----------
    backend
        A registered backend name (``'loky'``, ``'multiprocessing'``, ``'threading'``,
        ``'sequential'``, or one added with ``register_parallel_backend``) or a backend object.
    n_jobs, verbose, temp_folder, max_nbytes, mmap_mode, prefer, require
        As for :class:`~zoblib.Parallel`.
    inner_max_num_threads
        Threads that BLAS/OpenMP libraries may use in each worker process, set even over the
        caller's own ``OMP_NUM_THREADS`` and kin (default: ``max(cpu_count() // n_jobs, 1)``,
        unless the caller set the variable). Only backends that set their workers'
        environment before they start take it (``'loky'``); others raise
        :class:`~zoblib.errors.BackendOptionError`.
    progress_bar
        Show a progress bar on standard error.
    store
        Where big numpy arguments and results (above ``max_nbytes``) of process and cluster
        backends go instead of the call's temporary folder: a folder every worker reads
        (``"/shared/dir"``) or an fsspec URL (``"s3://bucket/prefix"``). Arrays are named by
        their content and stay there after the call, so a repeated argument is written once
        (see :mod:`zoblib.parallel.store`; ``clear_store`` empties it).
    storage_options
        Options of the store URL's fsspec file system (``endpoint_url``, ``key``...).
    **backend_params
        Passed to the backend's factory when ``backend`` is a name: ``initializer`` and
        ``initargs`` (run once in each worker process of ``'loky'`` and
        ``'multiprocessing'``), ``idle_worker_timeout`` (``'loky'``), ``maxtasksperchild``
        and ``context`` (``'multiprocessing'``).

    Examples
    --------
    >>> from zoblib.parallel import Parallel, delayed, parallel_config
    >>> with parallel_config(backend="threading", n_jobs=2):
    ...     Parallel()(delayed(abs)(-i) for i in range(3))
    [0, 1, 2]
    """

    def __init__(
        self,
        backend: str | ParallelBackendBase | None = NONE_DEFAULT,
        *,
        n_jobs: int | None = NONE_DEFAULT,
        verbose: int = VERBOSE_DEFAULT,
        temp_folder: str | None = NONE_DEFAULT,
        max_nbytes: int | str | None = MAX_NBYTES_DEFAULT,
        mmap_mode: str | None = MMAP_MODE_DEFAULT,
        prefer: str | None = NONE_DEFAULT,
        require: str | None = NONE_DEFAULT,
        inner_max_num_threads: int | None = NONE_DEFAULT,
        progress_bar: bool = FALSE_DEFAULT,
        store: str | os.PathLike[str] | None = NONE_DEFAULT,
        storage_options: Mapping[str, Any] | None = NONE_DEFAULT,
        **backend_params: Any,
    ) -> None:
        given = {
            "backend": backend,
            "n_jobs": n_jobs,
            "verbose": verbose,
            "temp_folder": temp_folder,
            "max_nbytes": max_nbytes,
            "mmap_mode": mmap_mode,
            "prefer": prefer,
            "require": require,
            "inner_max_num_threads": inner_max_num_threads,
            "progress_bar": progress_bar,
            "store": store,
            "storage_options": storage_options,
        }
        self.settings: dict[str, Any] = {k: v for k, v in given.items() if not is_default(v)}
        if backend_params:
            self.settings["backend_params"] = backend_params
        _check_settings(self.settings)
        self._tokens: list[Token[Mapping[str, Any]]] = []

    def __enter__(self) -> dict[str, Any]:
        """Activate the block; return its settings, ``'backend'`` as a backend object (joblib's).

        The active configuration keeps the backend's *name*: each ``Parallel`` of the block
        makes its own backend object from it, so that two calls alive at once (generators)
        never share one backend's state. The object returned here describes the block's
        backend (its class, options, ``nesting_level``); a backend *object* given to the
        block is returned, and used, as it is.
        """
        from zoblib.parallel.registry import make_backend

        merged = dict(_config.get())
        if "backend" in self.settings:
            merged.pop("backend_params", None)  # parameters of the outer backend do not apply
        merged.update(self.settings)
        self._tokens.append(_config.set(MappingProxyType(merged)))
        shown = dict(merged)
        if merged.get("backend") is not None:
            try:
                shown["backend"] = make_backend(merged["backend"], **merged.get("backend_params", {}))
            except BaseException:
                # The with statement does not call __exit__ when __enter__ raises: undo it here,
                # or the block's settings would stay active for every later call.
                self.__exit__(None, None, None)
                raise
        return shown

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _config.reset(self._tokens.pop())


class parallel_backend(parallel_config):  # lowercase: joblib's name
    """Choose the backend of the ``Parallel`` calls inside a ``with`` block (older form).

    Prefer :class:`parallel_config`. Unlike it, ``n_jobs`` defaults to ``-1`` (all CPUs), and
    entering the block gives the backend object and ``n_jobs``.

    Parameters
    ----------
    backend
        A registered backend name or a backend object.
    n_jobs
        Default number of workers of the calls inside the block.
    inner_max_num_threads
        Threads that BLAS/OpenMP libraries may use in each worker process.
    **backend_params
        Passed to the backend's factory when ``backend`` is a name.

    Examples
    --------
    >>> from zoblib.parallel import Parallel, delayed, parallel_backend
    >>> with parallel_backend("threading", n_jobs=2):
    ...     Parallel()(delayed(abs)(-i) for i in range(3))
    [0, 1, 2]
    """

    def __init__(
        self,
        backend: str | ParallelBackendBase,
        n_jobs: int = -1,
        inner_max_num_threads: int | None = None,
        **backend_params: Any,
    ) -> None:
        super().__init__(
            backend,
            n_jobs=n_jobs,
            inner_max_num_threads=inner_max_num_threads,
            **backend_params,
        )

    def __enter__(self) -> tuple[ParallelBackendBase, int]:  # type: ignore[override]
        shown = super().__enter__()
        return shown["backend"], shown["n_jobs"]


def _check_settings(settings: Mapping[str, Any]) -> None:
    from zoblib.parallel.arrays import memmap_mode
    from zoblib.parallel.registry import check_backend

    backend = settings.get("backend")
    if backend is not None:
        check_backend(backend)
    _check_backend_options(backend, settings.get("backend_params", {}), settings.get("inner_max_num_threads"))
    if settings.get("n_jobs") is not None:
        resolve_n_jobs(settings["n_jobs"])
    check_choice("prefer", settings.get("prefer"), PREFER_VALUES)
    check_choice("require", settings.get("require"), REQUIRE_VALUES)
    parse_nbytes(settings.get("max_nbytes"))
    if settings.get("mmap_mode") is not None:
        memmap_mode(settings["mmap_mode"])
    if settings.get("store") is not None or settings.get("storage_options") is not None:
        array_store(settings)  # refuse storage_options for a folder, or without a store, now


def array_store(settings: Mapping[str, Any]) -> ArrayStore | None:
    """Return the content-named store ``settings`` name (``store=``), or None.

    Raises
    ------
    ValueError
        For ``storage_options`` without a store at a URL.
    """
    from zoblib.parallel.store import ArrayStore

    location = settings.get("store")
    options = settings.get("storage_options")
    if location is None:
        if options:
            raise ValueError("storage_options= needs store= (the URL they are the options of)")
        return None
    return ArrayStore(os.fspath(location), options or {})


def _check_backend_options(
    backend: str | ParallelBackendBase | None, params: Mapping[str, Any], inner_threads: int | None
) -> None:
    """Refuse options that could not reach a backend, as joblib refuses them."""
    from zoblib.parallel.registry import make_backend

    if backend is None:
        if inner_threads is not None or params:
            given = sorted(params) + (["inner_max_num_threads"] if inner_threads is not None else [])
            raise BackendOptionError(
                "inner_max_num_threads and other constructor parameters backend_params are only "
                f"supported when backend is not None: got {', '.join(given)} without a backend; "
                "name the backend, as in parallel_config('loky', inner_max_num_threads=1)"
            )
        return
    if params and not isinstance(backend, str):
        raise BackendOptionError(
            "Constructor parameters backend_params are only supported when backend is a "
            f"string: got {', '.join(sorted(params))} with the backend object {backend!r}; "
            "pass them to its constructor instead"
        )
    if inner_threads is not None:
        made = make_backend(backend, **params)
        if not made.supports_worker_env:
            raise BackendOptionError(
                f"{type(made).__name__} does not accept setting the inner_max_num_threads "
                f"argument: the {made.name!r} backend cannot set thread limits in its workers "
                "before they import their libraries; use the 'loky' backend"
            )


@contextmanager
def worker_context(inherited: Mapping[str, Any], share: WorkerShare) -> Iterator[None]:
    """Run a worker's tasks under the configuration their own ``Parallel`` calls should see.

    As joblib's backends do, inner calls default to the threading backend one level down and
    to the sequential one deeper (threads in threads in threads only add overhead); ``n_jobs=-1``
    there means the worker's share of the CPUs (``share.cpus``) rather than the whole machine:
    nested calls do not oversubscribe the cores.
    """
    nested = {key: value for key, value in inherited.items() if key in INHERITED_IN_WORKERS}
    nested["backend"] = NESTED_BACKEND.get() or ("threading" if share.nesting_level <= 1 else "sequential")
    config_token = _config.set(MappingProxyType(nested))
    share_token = _worker_share.set(share)
    try:
        yield
    finally:
        _worker_share.reset(share_token)
        _config.reset(config_token)
