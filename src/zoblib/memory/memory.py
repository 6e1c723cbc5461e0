"""``Memory``: joblib's cache of function results, with results stored as zoblib archives."""

from __future__ import annotations

import datetime
import functools
import inspect
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from zoblib.errors import CacheWarning
from zoblib.memory.catalog import (
    CachedFunctionInfo,
    CacheEntryInfo,
    entry_info,
    function_info,
    iter_entry_stats,
)
from zoblib.memory.eviction import CacheLimits, LimitEnforcer, enforce_limits
from zoblib.memory.keys import function_id
from zoblib.memory.maintenance import maintenance_errors
from zoblib.memory.memorized import (
    AsyncMemorizedFunc,
    AsyncNotMemorizedFunc,
    MemorizedFunc,
    NotMemorizedFunc,
    ValidationCallback,
    forget_verified_code,
)
from zoblib.memory.registry import memory_store_backend
from zoblib.memory.store import EntryStat, StoreBackend


class Memory:
    """A context for caching a function's return values, keyed by its arguments.

    Each cached call is one zoblib archive (``zoblib.load`` opens it) with a small metadata
    document, under ``<location>/zoblib/<module>/<function>/<argument hash>/``; the store's
    folder, ``store_backend.location``, is ``<location>/zoblib`` (joblib's is
    ``<location>/joblib``). Big arrays come back memory-mapped with ``mmap_mode='r'`` without
    being read.

    Parameters
    ----------
    location : str, os.PathLike, URL or None
        The cache's folder, or the URL of an fsspec file system (``s3://bucket/prefix``,
        ``memory://name``; ``file://`` URLs are local folders; ``~`` is expanded). ``None``
        caches nothing: cached functions call straight through, as they do (with a warning)
        for a location of any other type. A store object is used as it is.
    backend : str, default 'local'
        The store backend's name (see :func:`register_store_backend`); URLs use ``'fsspec'``.
        An unknown name raises :class:`~zoblib.errors.UnknownStoreBackendError`, a
        ``TypeError`` as in joblib (and a ``ValueError``).
    mmap_mode : {None, 'r', 'r+', 'c'}
        How cached arrays are loaded: ``None`` reads them into memory; ``'r'`` returns
        ``np.memmap`` for uncompressed arrays and :class:`~zoblib.LazyArray` for compressed
        ones (local stores only; remote results are read whole).
    compress : bool, int, str or tuple
        Compression of stored results, as ``zoblib.dump``'s ``compress``.
    verbose : int, default 1
        joblib's messages: 1 prints each computation, 2 each load too, more prints timings.
    backend_options : dict, optional
        Options of the store backend: ``container`` (``'zarr'``, the default, or ``'zip'``),
        ``fsync`` and ``verify`` (check memory-mapped results on every hit) for the local store;
        fsspec's storage options for URLs.
    bytes_limit : int or str, optional
        Largest size of the cache (``'10G'`` works), enforced after each write by deleting the
        least recently used entries (the entry just written is kept). Keyword-only: joblib 1.6
        has no such parameter, and its sixth positional one is ``backend_options``.
    items_limit : int, optional
        Largest number of entries, enforced after each write like ``bytes_limit``.
    age_limit : datetime.timedelta, optional
        Entries not accessed for longer are deleted after each write.

    Examples
    --------
    >>> memory = Memory(tmp_path / "cache", verbose=0)
    >>> @memory.cache
    ... def square(x):
    ...     return x * x
    >>> square(3), square.check_call_in_cache(3)
    (9, True)
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | StoreBackend | None = None,
        backend: str = "local",
        mmap_mode: str | None = None,
        compress: Any = False,
        verbose: int = 1,
        backend_options: Mapping[str, Any] | None = None,
        *,
        bytes_limit: int | str | None = None,
        items_limit: int | None = None,
        age_limit: datetime.timedelta | None = None,
    ) -> None:
        if mmap_mode not in (None, "r", "r+", "c"):
            raise ValueError(f"mmap_mode must be None, 'r', 'r+' or 'c', got {mmap_mode!r}")
        self.location = location
        self.backend = backend
        self.mmap_mode = mmap_mode
        self.compress = compress
        self._verbose = verbose
        self.backend_options = dict(backend_options or {})
        self.timestamp = time.time()
        self.limits = CacheLimits.parse(bytes_limit, items_limit, age_limit)
        self.bytes_limit = bytes_limit
        self.store_backend: StoreBackend | None = memory_store_backend(
            backend, location, self.backend_options
        )
        self._enforcer = (
            LimitEnforcer(self.store_backend, self.limits)
            if self.store_backend is not None and self.limits
            else None
        )

    def cache(
        self,
        func: Callable[..., Any] | None = None,
        ignore: Sequence[str] | None = None,
        verbose: int | None = None,
        mmap_mode: str | bool | None = False,
        cache_validation_callback: ValidationCallback | None = None,
    ) -> Any:
        """Decorate ``func`` so its results are cached; usable with or without arguments.

        Parameters
        ----------
        func : callable, optional
            The function (or method, lambda, ``async def`` function) to cache.
        ignore : list of str, optional
            Arguments left out of the key (``['verbose']``).
        verbose : int, optional
            The decorated function's verbosity (default: the Memory's).
        mmap_mode : {None, 'r', 'r+', 'c'}, optional
            As ``Memory``'s; by default the Memory's.
        cache_validation_callback : callable, optional
            Called with a found entry's metadata; when it returns False the entry is deleted
            and the result computed again (see :func:`expires_after`).

        Returns
        -------
        MemorizedFunc or NotMemorizedFunc
            Callable like ``func``, with ``call``, ``call_and_shelve``, ``check_call_in_cache``,
            ``cache_status``, ``list_entries`` and ``clear``. ``async def`` functions give an
            object whose calls are awaited.
        """
        if cache_validation_callback is not None and not callable(cache_validation_callback):
            raise ValueError(
                f"cache_validation_callback needs to be callable. Got {cache_validation_callback}."
            )
        if func is None:
            return functools.partial(
                self.cache,
                ignore=ignore,
                verbose=verbose,
                mmap_mode=mmap_mode,
                cache_validation_callback=cache_validation_callback,
            )
        if isinstance(func, (MemorizedFunc, NotMemorizedFunc)):
            func = func.func
        is_async = inspect.iscoroutinefunction(func)
        if self.store_backend is None:
            return AsyncNotMemorizedFunc(func) if is_async else NotMemorizedFunc(func)
        cls = AsyncMemorizedFunc if is_async else MemorizedFunc
        return cls(
            func,
            location=self.store_backend,
            ignore=ignore,
            mmap_mode=self.mmap_mode if mmap_mode is False else mmap_mode,  # type: ignore[arg-type]
            compress=self.compress,
            verbose=self._verbose if verbose is None else verbose,
            timestamp=self.timestamp,
            cache_validation_callback=cache_validation_callback,
            limits=self._enforcer,
        )

    def eval(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``func(*args, **kwargs)`` through the cache."""
        if self.store_backend is None:
            return func(*args, **kwargs)
        return self.cache(func)(*args, **kwargs)

    def clear(self, warn: bool = True) -> None:
        """Delete everything the cache holds.

        Raises
        ------
        CacheError
            If the cache cannot be changed (a read-only cache); also an ``OSError``.
        """
        if warn:
            warnings.warn(CacheWarning(f"[{self!r}]: Flushing completely the cache"), stacklevel=2)
        if self.store_backend is not None:
            with maintenance_errors(self.store_backend.location, "clear"):
                self.store_backend.clear()
            forget_verified_code(self.store_backend.location)

    def reduce_size(
        self,
        bytes_limit: int | str | None = None,
        items_limit: int | None = None,
        age_limit: datetime.timedelta | None = None,
    ) -> list[CacheEntryInfo]:
        """Delete entries, least recently used first, until the cache fits the limits.

        Parameters
        ----------
        bytes_limit : int or str, optional
            Largest total size (``'10M'``, ``'1G'`` work). Defaults to the Memory's own.
        items_limit : int, optional
            Largest number of entries.
        age_limit : datetime.timedelta, optional
            Entries not accessed for longer are deleted.

        Returns
        -------
        list of CacheEntryInfo
            The entries deleted (joblib returns nothing).

        Raises
        ------
        CacheError
            If entries to delete could not be (a read-only cache); also an ``OSError``. The
            others are deleted all the same; the message counts both.
        """
        if self.store_backend is None:
            return []
        if bytes_limit is None and items_limit is None and age_limit is None:
            limits = self.limits
        else:
            limits = CacheLimits.parse(bytes_limit, items_limit, age_limit)
        if not limits:
            return []
        location = self.store_backend.location
        with maintenance_errors(location, "remove entries from"):
            outcome = enforce_limits(self.store_backend, limits)
        error = outcome.error(location)
        if error is not None:
            raise error from outcome.failed[0][1]
        return [
            CacheEntryInfo(
                r.func_id,
                r.args_id,
                self.store_backend.entry_location(r.func_id, r.args_id),
                r.size,
                r.last_access,
                None,
                None,
            )
            for r in outcome.removed
        ]

    def list_functions(self) -> list[CachedFunctionInfo]:
        """The cached functions: id, number of entries, size and last access."""
        if self.store_backend is None:
            return []
        store = self.store_backend
        return [function_info(f, store.iter_entries(f)) for f in store.list_functions()]

    def list_entries(self, func: Callable[..., Any] | str | None = None) -> list[CacheEntryInfo]:
        """The cached calls, of one function (a cached function, a function or its id) or all.

        Entries come least recently used first, each with its size, last access, computation
        time and duration and a summary of its arguments. To go through a big cache without
        holding it in memory, use :meth:`iter_entries`.
        """
        if self.store_backend is None:
            return []
        store = self.store_backend
        stats = self._entry_stats(func)
        return [entry_info(store, s) for s in sorted(stats, key=lambda s: s.last_access)]

    def iter_entries(self, func: Callable[..., Any] | str | None = None) -> Iterator[CacheEntryInfo]:
        """The cached calls, as :meth:`list_entries` gives them, one at a time and unsorted.

        The store is read folder by folder: memory stays flat whatever the cache holds.
        """
        if self.store_backend is None:
            return
        store = self.store_backend
        for stat in self._entry_stats(func):
            yield entry_info(store, stat)

    def _entry_stats(self, func: Callable[..., Any] | str | None) -> Iterator[EntryStat]:
        assert self.store_backend is not None
        if func is None:
            return iter_entry_stats(self.store_backend)
        if isinstance(func, MemorizedFunc):
            func_id = func.func_id
        elif isinstance(func, str):
            func_id = func
        else:
            func_id = function_id(func)
        return self.store_backend.iter_entries(func_id)

    def __repr__(self) -> str:
        location = None if self.store_backend is None else self.store_backend.location
        return f"{type(self).__name__}(location={location})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["timestamp"] = None
        return state
