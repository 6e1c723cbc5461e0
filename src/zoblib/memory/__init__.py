"""``Memory``: joblib's cache of function results, each result a zoblib archive.

Modules: ``memory`` (``Memory``), ``memorized`` (cached functions), ``results`` (references
to cached values), ``keys`` (function ids, code digests, argument hashes), ``store`` (the store
contract), ``local_store`` and ``fsspec_store`` (the stores), ``registry`` (store backends by
name), ``eviction`` (size, count and age limits), ``maintenance`` (the errors of clearing and
evicting), ``expiry`` (``expires_after``), ``catalog`` (listing entries, miss reasons) and
``messages`` (joblib's verbose output), ``collisions`` (two functions sharing a folder).

``JobLibCollisionWarning`` and ``StoreBackendBase`` are joblib's names for
:class:`~zoblib.errors.CacheCollisionWarning` and :class:`StoreBackend`.
"""

from __future__ import annotations

from zoblib.errors import CacheCollisionWarning
from zoblib.memory.catalog import CachedFunctionInfo, CacheEntryInfo, CacheStatus, MissReason
from zoblib.memory.eviction import CacheLimits
from zoblib.memory.expiry import expires_after
from zoblib.memory.local_store import LocalStoreBackend
from zoblib.memory.memorized import (
    AsyncMemorizedFunc,
    AsyncNotMemorizedFunc,
    MemorizedFunc,
    NotMemorizedFunc,
)
from zoblib.memory.memory import Memory
from zoblib.memory.registry import STORE_BACKENDS, register_store_backend
from zoblib.memory.results import MemorizedResult, NotMemorizedResult
from zoblib.memory.store import EntryNotFoundError, EntryStat, EntryUnreadableError, StoreBackend

#: joblib's name of the warning (``joblib.memory.JobLibCollisionWarning``).
JobLibCollisionWarning = CacheCollisionWarning
#: joblib's name of the store contract (``joblib.StoreBackendBase``).
StoreBackendBase = StoreBackend

__all__ = [
    "STORE_BACKENDS",
    "AsyncMemorizedFunc",
    "AsyncNotMemorizedFunc",
    "CacheEntryInfo",
    "CacheLimits",
    "CacheStatus",
    "CachedFunctionInfo",
    "EntryNotFoundError",
    "EntryStat",
    "EntryUnreadableError",
    "JobLibCollisionWarning",
    "LocalStoreBackend",
    "MemorizedFunc",
    "MemorizedResult",
    "Memory",
    "MissReason",
    "NotMemorizedFunc",
    "NotMemorizedResult",
    "StoreBackend",
    "StoreBackendBase",
    "expires_after",
    "register_store_backend",
]
