"""Keeping a cache within its limits: least recently used entries go first.

``Memory.reduce_size`` applies limits once; a ``Memory`` made with limits also applies them
after each write (:class:`LimitEnforcer`), which joblib never does on its own.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from zoblib.errors import CacheError
from zoblib.memory.catalog import all_entry_stats
from zoblib.memory.maintenance import cache_error
from zoblib.memory.store import EntryStat, StoreBackend

#: A cache written by other processes too is rescanned at least this often by a writer.
RESCAN_SECONDS = 30.0

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_bytes(limit: int | str | None) -> int | None:
    """A byte count from an int or joblib's strings (``'10M'``, ``'1G'``, ``'512K'``).

    Examples
    --------
    >>> parse_bytes("10M"), parse_bytes(2048), parse_bytes(None)
    (10485760, 2048, None)
    """
    if limit is None:
        return None
    if isinstance(limit, bool):
        raise TypeError("bytes_limit must be an int or a string such as '10M'")
    if isinstance(limit, int):
        if limit < 0:
            raise ValueError(f"bytes_limit must not be negative, got {limit}")
        return limit
    match = _SIZE_TEXT.match(str(limit))
    if match is None:
        raise ValueError(f"invalid bytes_limit {limit!r}: use an int or a string such as '10M' or '1G'")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


@dataclass(frozen=True)
class CacheLimits:
    """The size, count and age a cache must keep within (None: no limit)."""

    bytes_limit: int | None = None
    items_limit: int | None = None
    age_limit: datetime.timedelta | None = None

    @classmethod
    def parse(
        cls,
        bytes_limit: int | str | None = None,
        items_limit: int | None = None,
        age_limit: datetime.timedelta | None = None,
    ) -> CacheLimits:
        if items_limit is not None and items_limit < 0:
            raise ValueError(f"items_limit must not be negative, got {items_limit}")
        if age_limit is not None:
            if not isinstance(age_limit, datetime.timedelta):
                raise TypeError(f"age_limit must be a datetime.timedelta, got {age_limit!r}")
            if age_limit.total_seconds() < 0:
                raise ValueError("age_limit has to be a positive timedelta")
        return cls(parse_bytes(bytes_limit), items_limit, age_limit)

    def __bool__(self) -> bool:
        return self.bytes_limit is not None or self.items_limit is not None or self.age_limit is not None


def select_victims(
    entries: Collection[EntryStat], limits: CacheLimits, *, keep: Collection[tuple[str, str]] = ()
) -> list[EntryStat]:
    """The entries to delete, least recently used first.

    Entries are kept from the most recently used down while they fit every limit; from the
    first one that does not fit, it and every older entry go (strict LRU). Entries in ``keep``
    (``(func_id, args_id)`` pairs) are never selected, but count towards the limits.
    """
    current = time.time()
    max_age = None if limits.age_limit is None else limits.age_limit.total_seconds()
    kept_bytes = sum(e.size for e in entries if (e.func_id, e.args_id) in keep)
    kept_items = sum(1 for e in entries if (e.func_id, e.args_id) in keep)
    victims: list[EntryStat] = []
    full = False
    for entry in sorted(entries, key=lambda e: e.last_access, reverse=True):
        if (entry.func_id, entry.args_id) in keep:
            continue
        too_old = max_age is not None and current - entry.last_access > max_age
        too_big = limits.bytes_limit is not None and kept_bytes + entry.size > limits.bytes_limit
        too_many = limits.items_limit is not None and kept_items + 1 > limits.items_limit
        full = full or too_big or too_many
        if full or too_old:
            victims.append(entry)
        else:
            kept_bytes += entry.size
            kept_items += 1
    victims.reverse()
    return victims


@dataclass(frozen=True)
class EvictionOutcome:
    """What one pass of :func:`enforce_limits` did."""

    #: The entries deleted.
    removed: list[EntryStat]
    #: The entries left, those that could not be deleted included.
    remaining: list[EntryStat]
    #: The entries that could not be deleted, each with the OSError met (a read-only cache).
    failed: list[tuple[EntryStat, OSError]]

    def error(self, location: str) -> CacheError | None:
        """A :class:`CacheError` describing the failures, or None if every victim went."""
        if not self.failed:
            return None
        total = len(self.removed) + len(self.failed)
        return cache_error(
            location,
            "remove entries from",
            self.failed[0][1],
            detail=f"{len(self.failed)} of {total} entries to evict could not be removed",
        )


def enforce_limits(
    store: StoreBackend, limits: CacheLimits, *, keep: Collection[tuple[str, str]] = ()
) -> EvictionOutcome:
    """Delete entries until ``store`` fits ``limits``, as far as the store lets us.

    An entry that cannot be deleted (a read-only cache, entries of another user) does not stop
    the others from going; it is reported in :attr:`EvictionOutcome.failed`.
    """
    entries = all_entry_stats(store)
    removed: list[EntryStat] = []
    failed: list[tuple[EntryStat, OSError]] = []
    for victim in select_victims(entries, limits, keep=keep):
        try:
            store.remove_entry(victim.func_id, victim.args_id)
        except OSError as exc:
            failed.append((victim, exc))
        else:
            removed.append(victim)
    gone = {(v.func_id, v.args_id) for v in removed}
    remaining = [e for e in entries if (e.func_id, e.args_id) not in gone]
    return EvictionOutcome(removed, remaining, failed)


class LimitEnforcer:
    """Applies a ``Memory``'s limits after its writes, without scanning the cache every time.

    A full scan (listing every entry) happens on the first write, whenever this process's own
    writes since the last scan may have pushed the cache over a limit, and at least every
    :data:`RESCAN_SECONDS` (other processes write too). Between scans the cache's size is
    estimated from the last scan plus this process's writes.
    """

    def __init__(self, store: StoreBackend, limits: CacheLimits) -> None:
        self.store = store
        self.limits = limits
        self._lock = threading.Lock()
        self._scanned_at: float | None = None
        self._bytes = 0
        self._items = 0

    def __getstate__(self) -> dict[str, object]:
        return {"store": self.store, "limits": self.limits}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["store"], state["limits"])  # type: ignore[misc]

    def after_write(self, size: int, entry: tuple[str, str]) -> EvictionOutcome | None:
        """Account for a new entry of ``size`` bytes; evict if needed (never ``entry`` itself).

        Returns what eviction did, or None when no scan was due. Entries that could not be
        deleted are left out of the size estimate until the next periodic rescan: otherwise a
        read-only part of the cache would make every later write rescan it and fail again.
        """
        with self._lock:
            self._bytes += size
            self._items += 1
            if not self._scan_needed():
                return None
            outcome = enforce_limits(self.store, self.limits, keep=(entry,))
            stuck = {(e.func_id, e.args_id) for e, _ in outcome.failed}
            counted = [e for e in outcome.remaining if (e.func_id, e.args_id) not in stuck]
            self._scanned_at = time.monotonic()
            self._bytes = sum(e.size for e in counted)
            self._items = len(counted)
            return outcome

    def _scan_needed(self) -> bool:
        if self._scanned_at is None or time.monotonic() - self._scanned_at > RESCAN_SECONDS:
            return True
        if self.limits.bytes_limit is not None and self._bytes > self.limits.bytes_limit:
            return True
        return self.limits.items_limit is not None and self._items > self.limits.items_limit
