"""What a cache holds and why a call missed: the records ``Memory`` hands to its users."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from zoblib.memory.store import EntryNotFoundError, EntryStat, EntryUnreadableError, StoreBackend


class MissReason(enum.StrEnum):
    """Why a cached function computed instead of loading a stored result."""

    #: No result stored for these arguments (never computed, cleared or evicted).
    NEW_ARGUMENTS = "new arguments"
    #: The function's code changed since its results were stored; they were cleared.
    CODE_CHANGED = "code changed"
    #: ``cache_validation_callback`` (for instance :func:`expires_after`) rejected the entry.
    EXPIRED = "expired"
    #: The entry exists but could not be read (damaged archive, missing file, bad metadata).
    UNREADABLE = "entry unreadable"
    #: ``call()`` was used, which always computes.
    FORCED = "forced by call()"


@dataclass(frozen=True)
class CacheStatus:
    """The outcome of looking a call up in the cache.

    Attributes
    ----------
    hit : bool
        Whether a stored result is (or was) used.
    reason : MissReason or None
        Why the call missed; None on a hit.
    args_id : str
        The hash naming the call's entry.
    location : str
        Where the entry lives (or would live).
    detail : str
        A sentence for people: the reason, with the error met when an entry was unreadable.
    """

    hit: bool
    reason: MissReason | None
    args_id: str
    location: str
    detail: str = ""

    def __bool__(self) -> bool:
        return self.hit


@dataclass(frozen=True)
class CacheEntryInfo:
    """One cached call, as :meth:`Memory.list_entries` lists it."""

    func_id: str
    args_id: str
    location: str
    #: Bytes the entry takes (archive and metadata).
    size: int
    #: Last read or write, in seconds since the epoch.
    last_access: float
    #: When the computation started (joblib's ``time``), or None if the metadata is unreadable.
    computed_at: float | None
    #: How long the computation took, in seconds.
    duration: float | None
    #: A short ``repr`` of each argument.
    input_args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CachedFunctionInfo:
    """One cached function, as :meth:`Memory.list_functions` lists it."""

    func_id: str
    entries: int
    #: Bytes its entries take.
    size: int
    #: The latest access to any of its entries (None when it has none).
    last_access: float | None


def all_entry_stats(store: StoreBackend) -> list[EntryStat]:
    """Every entry of every function of ``store``."""
    return list(iter_entry_stats(store))


def iter_entry_stats(store: StoreBackend) -> Iterator[EntryStat]:
    """Every entry of every function of ``store``, one at a time (memory stays flat)."""
    for func_id in store.list_functions():
        yield from store.iter_entries(func_id)


def entry_info(store: StoreBackend, stat: EntryStat) -> CacheEntryInfo:
    """The listing record of one entry (its metadata read when readable)."""
    metadata: Mapping[str, Any] = {} if stat.metadata is None else stat.metadata
    if stat.metadata is None:  # not read by the listing that made ``stat``
        with contextlib.suppress(EntryNotFoundError, EntryUnreadableError):
            metadata = store.read_metadata(stat.func_id, stat.args_id)
    inputs = metadata.get("input_args")
    return CacheEntryInfo(
        func_id=stat.func_id,
        args_id=stat.args_id,
        location=store.entry_location(stat.func_id, stat.args_id),
        size=stat.size,
        last_access=stat.last_access,
        computed_at=_number(metadata.get("time")),
        duration=_number(metadata.get("duration")),
        input_args=dict(inputs) if isinstance(inputs, dict) else {},
    )


def function_info(func_id: str, stats: Iterable[EntryStat]) -> CachedFunctionInfo:
    """The summary of one function's entries (read one at a time)."""
    return function_summary(func_id, stats)[0]


def function_summary(func_id: str, stats: Iterable[EntryStat]) -> tuple[CachedFunctionInfo, int | None]:
    """The summary of one function's entries and their hits (None if the store counts none)."""
    entries = size = hits = 0
    counted = False
    last_access: float | None = None
    for stat in stats:
        entries += 1
        size += stat.size
        if stat.hits is not None:
            hits += stat.hits
            counted = True
        last_access = stat.last_access if last_access is None else max(last_access, stat.last_access)
    info = CachedFunctionInfo(func_id=func_id, entries=entries, size=size, last_access=last_access)
    return info, (hits if counted or not entries else None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
