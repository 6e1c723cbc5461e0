"""Keeping a cache within its limits: least recently used entries go first.

``Memory.reduce_size`` applies limits once; a ``Memory`` made with limits also applies them
after each write (:class:`LimitEnforcer`), which joblib never does on its own. With the local
store's index, both cost what they remove; other stores are scanned.
"""

from __future__ import annotations

import datetime
import heapq
import itertools
import re
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from zoblib.errors import CacheError
from zoblib.memory.maintenance import cache_error
from zoblib.memory.store import EntryStat, StoreBackend

#: A cache written by other processes too is rescanned at least this often by a writer.
RESCAN_SECONDS = 30.0
#: Automatic age limits read every entry's files at least this often (see LimitEnforcer).
AGE_SCAN_SECONDS = 600.0

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


@dataclass(frozen=True)
class EvictionOutcome:
    """What one pass of :func:`enforce_limits` did."""

    #: The entries deleted (or, in a dry run, to delete), least recently used first.
    removed: list[EntryStat]
    #: How many entries, and bytes, are left (those that could not be deleted included).
    remaining_items: int
    remaining_bytes: int
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


def _over(limits: CacheLimits, items: int, nbytes: int) -> bool:
    too_big = limits.bytes_limit is not None and nbytes > limits.bytes_limit
    return too_big or (limits.items_limit is not None and items > limits.items_limit)


def _verified_by_access(store: StoreBackend, gone: list[EntryStat]) -> Iterator[EntryStat]:
    """The store's entries, least recently used first, each checked against the store.

    ``entries_by_access`` may give lower bounds of the last accesses (an index that hits do not
    write to): each candidate is refreshed; one used since goes back in line at its true last
    access. A candidate is yielded once no entry still in line can be older: exact LRU, at the
    cost of the entries looked at, not of the whole cache. Candidates found gone are put in
    ``gone`` (the totals still counted them).
    """
    waiting: list[tuple[float, int, EntryStat]] = []
    order = itertools.count()
    for candidate in store.entries_by_access():
        while waiting and waiting[0][0] <= candidate.last_access:
            yield heapq.heappop(waiting)[2]
        fresh = store.refresh_entry(candidate)
        if fresh is None:
            gone.append(candidate)  # removed behind the index's back: the totals counted it
            continue
        if fresh.last_access <= candidate.last_access:
            yield fresh
        else:
            heapq.heappush(waiting, (fresh.last_access, next(order), fresh))
    while waiting:
        yield heapq.heappop(waiting)[2]


def enforce_limits(
    store: StoreBackend,
    limits: CacheLimits,
    *,
    keep: Collection[tuple[str, str]] = (),
    dry_run: bool = False,
    scan_ages: bool = True,
) -> EvictionOutcome:
    """Delete entries until ``store`` fits ``limits``, as far as the store lets us.

    Entries go least recently used first while the cache is over its size or count limit, and
    every entry not accessed for longer than ``age_limit`` goes; entries in ``keep``
    (``(func_id, args_id)`` pairs) stay but count. With a store that knows its totals (the local
    store's index) this costs the entries removed, not the cache's size. An entry that cannot be
    deleted (a read-only cache, entries of another user) does not stop the others from going;
    it is reported in :attr:`EvictionOutcome.failed`. ``dry_run`` deletes nothing.

    The age limit is applied from the entries' files, never from an index alone: the files
    are the truth, and a user can make an entry old behind an index's back (a cache copied
    over another with its mtimes kept, ``touch -d``, a cache restored from a backup) without
    any folder's mtime telling. So with an age limit, every entry's mtimes are read (two stats
    an entry; ``scan_ages=False`` lets automatic enforcement skip that between its periodic
    scans, trusting the index's last accesses, which are right for everything zoblib does).
    Size and count limits then go through the index's least-recently-used order, each
    candidate checked against its files (:func:`_verified_by_access`).
    """
    totals = store.totals()
    cutoff = None if limits.age_limit is None else time.time() - limits.age_limit.total_seconds()
    stream: Iterator[EntryStat]
    gone: list[EntryStat] = []
    if totals is None:  # no index: one scan gives the totals, the ages and the order
        scanned = list(store.entries_by_access())
        totals = (len(scanned), sum(e.size for e in scanned))
        stream = iter(scanned)
    else:
        stream = _verified_by_access(store, gone)
        if cutoff is not None and scan_ages:
            old = sorted(store.entries_accessed_before(cutoff), key=lambda e: e.last_access)
            stream = itertools.chain(old, stream)
    items, nbytes = totals
    removed: list[EntryStat] = []
    failed: list[tuple[EntryStat, OSError]] = []
    chosen: set[tuple[str, str]] = set()  # victims met twice (the age scan, then the index)
    for entry in stream:
        while gone:  # the index was behind: those no longer count (unless counted as victims)
            stale = gone.pop()
            if (stale.func_id, stale.args_id) not in chosen:
                items, nbytes = items - 1, nbytes - stale.size
        key = (entry.func_id, entry.args_id)
        if key in chosen:
            continue
        too_old = cutoff is not None and entry.last_access < cutoff
        if not too_old and not _over(limits, items, nbytes):
            break  # every later entry is more recent, and the cache fits
        if key in keep:
            continue
        chosen.add(key)
        items -= 1  # a victim, deleted or not: the others are chosen as if it were gone
        nbytes -= entry.size
        if not dry_run:
            try:
                store.remove_entry(entry.func_id, entry.args_id)
            except OSError as exc:
                failed.append((entry, exc))
                continue
        removed.append(entry)
    stuck = len(failed), sum(e.size for e, _ in failed)
    return EvictionOutcome(removed, items + stuck[0], nbytes + stuck[1], failed)


class LimitEnforcer:
    """Applies a ``Memory``'s limits after its writes.

    With a store that knows its totals (the local store's index), every write checks them
    (one read of the index) and evicts what it must; an age limit is checked at most every
    :data:`RESCAN_SECONDS`, from the entries' files on the first check and every
    :data:`AGE_SCAN_SECONDS` (see :func:`enforce_limits`), from the index in between. Other
    stores are scanned on the first write, whenever this process's own writes since the last
    scan may have pushed the cache over a limit, and at least every :data:`RESCAN_SECONDS`
    (other processes write too); between scans the cache's size is estimated from the last
    scan plus this process's writes.
    """

    def __init__(self, store: StoreBackend, limits: CacheLimits) -> None:
        self.store = store
        self.limits = limits
        self._lock = threading.Lock()
        self._scanned_at: float | None = None
        self._age_scanned_at: float | None = None
        self._bytes = 0
        self._items = 0

    def __getstate__(self) -> dict[str, object]:
        return {"store": self.store, "limits": self.limits}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["store"], state["limits"])  # type: ignore[misc]

    def after_write(self, size: int, entry: tuple[str, str]) -> EvictionOutcome | None:
        """Account for a new entry of ``size`` bytes; evict if needed (never ``entry`` itself).

        Returns what eviction did, or None when nothing was due. Entries that could not be
        deleted are left out of the size estimate until the next periodic rescan: otherwise a
        read-only part of the cache would make every later write rescan it and fail again.
        """
        with self._lock:
            self._bytes += size
            self._items += 1
            totals = self.store.totals()
            if totals is not None:
                if not self._due(*totals):
                    return None
                scan_ages = self._age_scan_due()
                return enforce_limits(self.store, self.limits, keep=(entry,), scan_ages=scan_ages)
            if not self._scan_needed():
                return None
            outcome = enforce_limits(self.store, self.limits, keep=(entry,))
            stuck = [e for e, _ in outcome.failed]
            self._scanned_at = time.monotonic()
            self._bytes = outcome.remaining_bytes - sum(e.size for e in stuck)
            self._items = outcome.remaining_items - len(stuck)
            return outcome

    def _due(self, items: int, nbytes: int) -> bool:
        if _over(self.limits, items, nbytes):
            return True
        if self.limits.age_limit is None:
            return False
        # The oldest entry by the index (a lower bound): checked at most every RESCAN_SECONDS.
        if self._scanned_at is not None and time.monotonic() - self._scanned_at < RESCAN_SECONDS:
            return False
        self._scanned_at = time.monotonic()
        return True

    def _age_scan_due(self) -> bool:
        # Reading every entry's mtimes at each write would cost a scan a write: it is done on
        # the first check of a process, then every AGE_SCAN_SECONDS; between, the index's last
        # accesses (right for all that zoblib does) drive the age limit.
        if self.limits.age_limit is None:
            return False
        current = time.monotonic()
        if self._age_scanned_at is not None and current - self._age_scanned_at < AGE_SCAN_SECONDS:
            return False
        self._age_scanned_at = current
        return True

    def _scan_needed(self) -> bool:
        if self._scanned_at is None or time.monotonic() - self._scanned_at > RESCAN_SECONDS:
            return True
        return _over(self.limits, self._items, self._bytes)
