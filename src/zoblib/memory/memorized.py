"""``MemorizedFunc``: a function whose results are looked up in a store before it runs.

A call goes: code check (once per process and code object) → argument hash → load the entry
(a hit) or compute, store and, with ``mmap_mode``, reload it (a miss). Whatever the store holds,
the user's code sees the right value or a fresh computation, never an exception from the cache.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from zoblib._version import __version__
from zoblib.errors import (
    CacheCollisionWarning,
    CacheEntryWarning,
    CacheError,
    CacheWarning,
    FunctionChangedWarning,
)
from zoblib.memory import messages
from zoblib.memory.catalog import CacheEntryInfo, CacheStatus, MissReason, entry_info
from zoblib.memory.collisions import collision_messages
from zoblib.memory.eviction import LimitEnforcer
from zoblib.memory.keys import (
    ArgumentBinder,
    args_id,
    code_record,
    display_name,
    function_id,
    input_summary,
)
from zoblib.memory.maintenance import cache_error, maintenance_errors
from zoblib.memory.registry import make_store_backend
from zoblib.memory.results import MemorizedResult, NotMemorizedResult
from zoblib.memory.store import EntryNotFoundError, EntryUnreadableError, StoreBackend

ValidationCallback = Callable[[Mapping[str, Any]], bool]

#: Where ``verbose >= 20`` logs each lookup (joblib logs it too, at INFO).
logger = logging.getLogger("zoblib.memory")

# The code objects whose record this process already checked, by (store location, function id):
# decorating a function again (or Memory.eval) then skips reading the record and the source,
# as joblib's _FUNCTION_HASHES does. The code object is kept, so its id cannot be reused.
_verified_code: dict[tuple[str, str], tuple[object, str]] = {}


def forget_verified_code(location: str) -> None:
    """Check the code records of a store again (after it was cleared)."""
    for key in [key for key in _verified_code if key[0] == location]:
        del _verified_code[key]


class NotMemorizedFunc:
    """Stands in for :class:`MemorizedFunc` when ``Memory(location=None)``: calls through."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def call_and_shelve(self, *args: Any, **kwargs: Any) -> Any:
        return NotMemorizedResult(self.func(*args, **kwargs))

    def call(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs), {}

    def check_call_in_cache(self, *args: Any, **kwargs: Any) -> bool:
        return False

    def clear_call(self, *args: Any, **kwargs: Any) -> bool:
        """Nothing is stored: False."""
        return False

    def clear(self, warn: bool = True) -> None:
        """Nothing to clear (``warn`` is accepted for compatibility)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(func={self.func})"


class AsyncNotMemorizedFunc(NotMemorizedFunc):
    """:class:`NotMemorizedFunc` for ``async def`` functions."""

    async def call_and_shelve(self, *args: Any, **kwargs: Any) -> Any:
        return NotMemorizedResult(await self.func(*args, **kwargs))

    async def call(self, *args: Any, **kwargs: Any) -> Any:
        return await self.func(*args, **kwargs), {}


class MemorizedFunc:
    """A function whose return values are cached in a store, keyed by its arguments.

    Made by :meth:`Memory.cache`; call it like the function. Also offers :meth:`call`
    (always compute), :meth:`call_and_shelve` (a reference instead of the value),
    :meth:`check_call_in_cache`, :meth:`cache_status` (why a call would miss),
    :meth:`list_entries` and :meth:`clear`.

    Built directly, as joblib's, ``MemorizedFunc(func, location, backend='local', ...)`` takes
    the store's own folder (or URL, or a store) as ``location``: unlike ``Memory``, it adds no
    ``zoblib`` subfolder.

    Attributes
    ----------
    func : callable
        The original function.
    func_id : str
        Its folder in the store: ``<module>/<qualified name>``.
    last_status : CacheStatus or None
        How the latest call from this process went: hit, or miss and why.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        location: Any,
        backend: str = "local",
        ignore: Sequence[str] | None = None,
        mmap_mode: str | None = None,
        compress: Any = False,
        verbose: int = 1,
        timestamp: float | None = None,
        cache_validation_callback: ValidationCallback | None = None,
        *,
        limits: LimitEnforcer | None = None,
    ) -> None:
        self.func = func
        self.store_backend: StoreBackend = make_store_backend(backend, location, None)
        self.func_id = function_id(func)
        self.ignore = list(ignore or [])
        self.mmap_mode = mmap_mode
        self.compress = compress
        self._verbose = verbose
        self.timestamp = time.time() if timestamp is None else timestamp
        self.cache_validation_callback = cache_validation_callback
        self.last_status: CacheStatus | None = None
        self._binder = ArgumentBinder(func, self.ignore)
        self._limits = limits
        self._lock = threading.Lock()
        self._code_state: tuple[int, str] | None = None
        self._code_changed = False
        self._staging_cleaned = False
        with contextlib.suppress(AttributeError, TypeError):  # callables without a name
            functools.update_wrapper(self, func)

    # ---- calling ---------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._cached_call(args, kwargs, shelving=False)[0]

    def call_and_shelve(self, *args: Any, **kwargs: Any) -> MemorizedResult | NotMemorizedResult:
        """Compute or look up the call, and return a :class:`MemorizedResult` reference.

        The reference is small and picklable; its ``get()`` loads the value, in any process.
        """
        result: MemorizedResult | NotMemorizedResult = self._cached_call(args, kwargs, shelving=True)[0]
        return result

    def call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Compute the call whatever the cache holds, store it, and return (output, metadata)."""
        arguments, key = self._key(args, kwargs)
        self._set_status(False, MissReason.FORCED, key)
        self._before_call(args, kwargs)
        start = time.time()
        output = self.func(*args, **kwargs)
        return self._after_call(key, arguments, output, start, shelving=False, replace=True)

    def _cached_call(self, args: Sequence[Any], kwargs: Mapping[str, Any], *, shelving: bool) -> Any:
        arguments, key = self._key(args, kwargs)
        status, value = self._lookup(key, args, kwargs, shelving=shelving)
        if status.hit:
            return value, {}
        self._before_call(args, kwargs)
        start = time.time()
        output = self.func(*args, **kwargs)
        return self._after_call(
            key, arguments, output, start, shelving=shelving, replace=_must_replace(status)
        )

    # ---- lookups ---------------------------------------------------------------------------

    def _key(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        digest = self._code_digest()
        arguments = self._binder.arguments(args, kwargs)
        return arguments, args_id(digest, arguments)

    def _set_status(self, hit: bool, reason: MissReason | None, key: str, detail: str = "") -> CacheStatus:
        location = self.store_backend.entry_location(self.func_id, key)
        status = CacheStatus(
            hit, reason, key, location, detail or ("hit" if reason is None else reason.value)
        )
        self.last_status = status
        return status

    def _lookup(
        self, key: str, args: Sequence[Any], kwargs: Mapping[str, Any], *, shelving: bool
    ) -> tuple[CacheStatus, Any]:
        """The lookup's status, and on a hit the value (or a reference when ``shelving``)."""
        store = self.store_backend
        if self._verbose >= 20:
            _, signature = messages.format_signature(self.func, args, kwargs)
            logger.info(
                "[%r]: Querying %s with signature %s (argument hash %s); the store location is %s.",
                self,
                display_name(self.func),
                signature,
                key,
                store.entry_location(self.func_id, ""),
            )
        reason = MissReason.CODE_CHANGED if self._code_changed else MissReason.NEW_ARGUMENTS
        metadata: dict[str, Any] | None = None
        try:
            if self.cache_validation_callback is not None or self._verbose > 1:
                metadata = store.read_metadata(self.func_id, key)
                if self.cache_validation_callback is not None and not self.cache_validation_callback(
                    metadata
                ):
                    self._remove_rejected(key, stacklevel=5)
                    detail = "rejected by cache_validation_callback"
                    return self._set_status(False, MissReason.EXPIRED, key, detail), None
            if shelving:
                if metadata is None and not store.contains(self.func_id, key):
                    raise EntryNotFoundError(key)
                store.touch(self.func_id, key)
                return self._set_status(True, None, key), self._reference(key, metadata)
            start = time.time()
            if self._verbose > 1:
                print(
                    messages.loading_message(
                        display_name(self.func),
                        metadata,
                        time.time() - self.timestamp,
                        self._verbose,
                        store.entry_location(self.func_id, key),
                    )
                )
            output = store.load_output(self.func_id, key, self.mmap_mode)
        except EntryNotFoundError:
            self._code_changed = False
            return self._set_status(False, reason, key), None
        except EntryUnreadableError as exc:
            _, signature = messages.format_signature(self.func, args, kwargs)
            warnings.warn(
                CacheEntryWarning(
                    f"[{self!r}]: cannot read the cached result of {signature}, computing it again: {exc}"
                ),
                stacklevel=4,
            )
            return self._set_status(False, MissReason.UNREADABLE, key, f"entry unreadable: {exc}"), None
        store.touch(self.func_id, key)
        if self._verbose > 4:
            print(messages.duration_message(self.func, time.time() - start, "cache loaded "))
        return self._set_status(True, None, key), output

    def _reference(self, key: str, metadata: dict[str, Any] | None = None) -> MemorizedResult:
        return MemorizedResult.from_store(
            self.store_backend,
            self.func_id,
            key,
            mmap_mode=self.mmap_mode,
            verbose=self._verbose - 1,
            timestamp=self.timestamp,
            metadata=metadata,
        )

    # ---- computing and storing -------------------------------------------------------------

    def _before_call(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        if self._verbose > 0:
            print(messages.calling_message(self.func, args, kwargs))

    def _after_call(
        self,
        key: str,
        arguments: Mapping[str, Any],
        output: Any,
        start: float,
        *,
        shelving: bool,
        replace: bool,
    ) -> tuple[Any, dict[str, Any]]:
        duration = time.time() - start
        metadata: dict[str, Any] = {
            "duration": duration,
            "input_args": input_summary(arguments),
            "time": start,
            "func_id": self.func_id,
            "args_id": key,
            "zoblib_version": __version__,
        }
        store = self.store_backend
        if not self._staging_cleaned:
            self._staging_cleaned = True
            store.remove_stale_staging(self.func_id)
        try:
            metadata = store.write_entry(
                self.func_id, key, output, metadata, compress=self.compress, replace=replace
            )
        except Exception as exc:  # a full disk or an unpicklable result must not fail the call
            warnings.warn(
                CacheEntryWarning(
                    f"[{self!r}]: could not store the result of {display_name(self.func)}: "
                    f"{type(exc).__name__}: {exc}"
                ),
                stacklevel=4,
            )
            return (NotMemorizedResult(output) if shelving else output), metadata
        if self._verbose > 0:
            print(messages.duration_message(self.func, time.time() - start))
        result: Any = output
        if shelving:
            result = self._reference(key, metadata)
        elif self.mmap_mode is not None and store.supports_mmap:
            # Return memory maps from the first call on, as later calls will (as joblib does).
            try:
                result = store.load_output(self.func_id, key, self.mmap_mode)
            except (EntryNotFoundError, EntryUnreadableError):
                result = output  # evicted or replaced meanwhile: the computed value is right
        if self._limits is not None:
            self._enforce_limits(self._limits, int(metadata.get("size", 0)), key)
        return result, metadata

    def _enforce_limits(self, limits: LimitEnforcer, size: int, key: str) -> None:
        """Evict after a write; a cache that cannot evict warns, it never fails the call.

        The user asked for a result, not for maintenance: like a result that cannot be stored,
        entries that cannot be deleted (a read-only part of a shared cache) give a warning.
        """
        location = self.store_backend.location
        try:
            outcome = limits.after_write(size, (self.func_id, key))
        except OSError as exc:  # the cache could not even be listed
            error: CacheError | None = cache_error(location, "enforce the limits of", exc)
        else:
            error = None if outcome is None else outcome.error(location)
        if error is not None:
            warnings.warn(CacheWarning(f"[{self!r}]: {error}"), stacklevel=5)

    # ---- the function's code ---------------------------------------------------------------

    def _code_object(self) -> object:
        code: object = getattr(self._plain_function(), "__code__", None)
        return self.func if code is None else code

    def _plain_function(self) -> Any:
        func: Any = self.func
        while hasattr(func, "__func__") or isinstance(func, functools.partial):
            func = func.func if isinstance(func, functools.partial) else func.__func__
        return func

    def _code_digest(self) -> str:
        """The digest of the function's code, checked against the store once per code object.

        When the stored record differs, the function's code changed since its results were
        stored, or another function shares its folder (a :class:`CacheCollisionWarning` then
        says so, where joblib's ``JobLibCollisionWarning`` would): the results are cleared
        (with joblib's warning) and the new record is written.
        """
        state = self._code_state
        code = self._code_object()
        key = id(code)
        verified = _verified_code.get((self.store_backend.location, self.func_id))
        # When another function was checked under this folder since (two functions sharing a
        # name), the record is read again: each switch between them warns and clears, as in
        # joblib, which reads the record at every call of such functions.
        if state is not None and state[0] == key and (verified is None or verified[0] is code):
            return state[1]
        if verified is not None and verified[0] is code:
            self._code_state = (key, verified[1])
            return verified[1]
        with self._lock:
            record = code_record(self.func)
            stored = self.store_backend.read_function_record(self.func_id)
            try:
                if stored is None:
                    self.store_backend.write_function_record(self.func_id, record.as_json())
                elif stored.get("digest") != record.digest:
                    self._code_changed = True
                    for message in collision_messages(self.func, stored, record):
                        warnings.warn(CacheCollisionWarning(message), stacklevel=5)
                    if self._verbose > 0:
                        warnings.warn(
                            FunctionChangedWarning(
                                f"[{self!r}]: Clearing function cache identified by {self.func_id} "
                                "(the function's code changed)"
                            ),
                            stacklevel=5,
                        )
                    self.store_backend.remove_function(self.func_id)
                    self.store_backend.write_function_record(self.func_id, record.as_json())
            except OSError as exc:
                # A read-only cache still serves hits; results of other code versions are never
                # returned anyway, as the argument hash covers the code digest.
                warnings.warn(
                    CacheEntryWarning(f"[{self!r}]: could not record the function's code: {exc}"),
                    stacklevel=5,
                )
            self._code_state = (key, record.digest)
            _verified_code[(self.store_backend.location, self.func_id)] = (code, record.digest)
        return record.digest

    # ---- inspecting and clearing -----------------------------------------------------------

    def check_call_in_cache(self, *args: Any, **kwargs: Any) -> bool:
        """Whether the call has a valid stored result (nothing is computed or loaded).

        As in joblib, an entry the ``cache_validation_callback`` rejects is deleted.
        """
        _, key = self._key(args, kwargs)
        store = self.store_backend
        if self.cache_validation_callback is None:
            return store.contains(self.func_id, key)
        try:
            metadata = store.read_metadata(self.func_id, key)
        except (EntryNotFoundError, EntryUnreadableError):
            return False
        if not self.cache_validation_callback(metadata):
            self._remove_rejected(key, stacklevel=3)
            return False
        return True

    def _remove_rejected(self, key: str, *, stacklevel: int) -> None:
        # The entry is never used again, removed or not: a read-only cache must not fail the
        # call (or the check) that rejected it.
        try:
            self.store_backend.remove_entry(self.func_id, key)
        except OSError as exc:
            error = cache_error(self.store_backend.location, "remove an expired entry from", exc)
            warnings.warn(CacheWarning(f"[{self!r}]: {error}"), stacklevel=stacklevel)

    def cache_status(self, *args: Any, **kwargs: Any) -> CacheStatus:
        """Whether this call would hit, and if not why (nothing computed, cleared or written).

        Returns
        -------
        CacheStatus
            ``hit``; on a miss ``reason`` (a :class:`MissReason`: new arguments, code changed,
            expired, entry unreadable) and a ``detail`` sentence.
        """
        record = code_record(self.func)
        stored = self.store_backend.read_function_record(self.func_id)
        key = args_id(record.digest, self._binder.arguments(args, kwargs))
        location = self.store_backend.entry_location(self.func_id, key)

        def miss(reason: MissReason, detail: str = "") -> CacheStatus:
            return CacheStatus(False, reason, key, location, detail or reason.value)

        if stored is not None and stored.get("digest") != record.digest:
            return miss(MissReason.CODE_CHANGED, "the function's code changed since its results were stored")
        try:
            metadata = self.store_backend.read_metadata(self.func_id, key)
            if self.store_backend.supports_mmap:
                self.store_backend.load_output(self.func_id, key, "r")  # cheap: checks the archive
        except EntryNotFoundError:
            return miss(MissReason.NEW_ARGUMENTS)
        except EntryUnreadableError as exc:
            return miss(MissReason.UNREADABLE, f"entry unreadable: {exc}")
        if self.cache_validation_callback is not None and not self.cache_validation_callback(metadata):
            return miss(MissReason.EXPIRED, "rejected by cache_validation_callback")
        return CacheStatus(True, None, key, location, "hit")

    def list_entries(self) -> list[CacheEntryInfo]:
        """The cached calls of this function (size, last access, duration, input summary)."""
        return list(self.iter_entries())

    def iter_entries(self) -> Iterator[CacheEntryInfo]:
        """The cached calls of this function, one at a time (memory stays flat)."""
        for stat in self.store_backend.iter_entries(self.func_id):
            yield entry_info(self.store_backend, stat)

    def clear_call(self, *args: Any, **kwargs: Any) -> bool:
        """Delete the stored result of one call, if there is one (nothing is computed).

        joblib 1.6 has no way to invalidate one call (its PR #1542 proposes one); this is it.

        Returns
        -------
        bool
            Whether an entry was there (and is now deleted).

        Raises
        ------
        CacheError
            If the entry cannot be deleted (a read-only cache); also an ``OSError``.
        """
        _, key = self._key(args, kwargs)
        store = self.store_backend
        found = store.contains(self.func_id, key)
        with maintenance_errors(store.location, "remove an entry from"):
            store.remove_entry(self.func_id, key)
        return found

    def clear(self, warn: bool = True) -> None:
        """Delete every cached result of this function.

        Raises
        ------
        CacheError
            If the cache cannot be changed (a read-only cache); also an ``OSError``.
        """
        if self._verbose > 0 and warn:
            warnings.warn(
                FunctionChangedWarning(f"[{self!r}]: Clearing function cache identified by {self.func_id}"),
                stacklevel=2,
            )
        with maintenance_errors(self.store_backend.location, f"clear {self.func_id} in"):
            self.store_backend.remove_function(self.func_id)
            self.store_backend.write_function_record(self.func_id, code_record(self.func).as_json())

    # ---- the object ------------------------------------------------------------------------

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # Decorating a method in a class body: bind the instance as its first argument.
        if instance is None:
            return self
        return BoundMemorizedFunc(self, instance)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["timestamp"] = None
        state["_code_state"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        if self.timestamp is None:
            self.timestamp = time.time()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(func={self.func}, location={self.store_backend.location})"


class AsyncMemorizedFunc(MemorizedFunc):
    """:class:`MemorizedFunc` for ``async def`` functions: the awaited result is cached."""

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return (await self._cached_call_async(args, kwargs, shelving=False))[0]

    async def call_and_shelve(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return (await self._cached_call_async(args, kwargs, shelving=True))[0]

    async def call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:  # type: ignore[override]
        arguments, key = self._key(args, kwargs)
        self._set_status(False, MissReason.FORCED, key)
        self._before_call(args, kwargs)
        start = time.time()
        output = await self.func(*args, **kwargs)
        return self._after_call(key, arguments, output, start, shelving=False, replace=True)

    async def _cached_call_async(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], *, shelving: bool
    ) -> Any:
        arguments, key = self._key(args, kwargs)
        status, value = self._lookup(key, args, kwargs, shelving=shelving)
        if status.hit:
            return value, {}
        self._before_call(args, kwargs)
        start = time.time()
        output = await self.func(*args, **kwargs)
        return self._after_call(
            key, arguments, output, start, shelving=shelving, replace=_must_replace(status)
        )


def _must_replace(status: CacheStatus) -> bool:
    # A damaged or expired entry must be replaced; after a plain miss, an entry another process
    # stored meanwhile for the same call is as good as ours and may stay.
    return status.reason is not MissReason.NEW_ARGUMENTS and status.reason is not MissReason.CODE_CHANGED


class BoundMemorizedFunc:
    """A :class:`MemorizedFunc` seen through an instance (a cached method in a class body)."""

    def __init__(self, memorized: MemorizedFunc, instance: Any) -> None:
        self.__func__ = memorized
        self.__self__ = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__(self.__self__, *args, **kwargs)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__.call(self.__self__, *args, **kwargs)

    def clear_call(self, *args: Any, **kwargs: Any) -> bool:
        return self.__func__.clear_call(self.__self__, *args, **kwargs)

    def call_and_shelve(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__.call_and_shelve(self.__self__, *args, **kwargs)

    def check_call_in_cache(self, *args: Any, **kwargs: Any) -> bool:
        return self.__func__.check_call_in_cache(self.__self__, *args, **kwargs)

    def cache_status(self, *args: Any, **kwargs: Any) -> CacheStatus:
        return self.__func__.cache_status(self.__self__, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__func__, name)

    def __repr__(self) -> str:
        return f"<bound {self.__func__!r} of {self.__self__!r}>"
