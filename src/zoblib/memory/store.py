"""The contract of a cache store: where ``Memory`` keeps its entries.

A store holds, per cached function (its *function id*, ``<module>/<qualified name>``), a code
record and one *entry* per cached call (its *args id*). An entry is a zoblib archive of the
result plus a small metadata document. A store must make each entry appear whole or not at all:
readers never see a half-written entry, whatever other processes do at the same time.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: File names inside a function's folder and inside an entry.
FUNCTION_RECORD_NAME = "func_code.json"
METADATA_NAME = "metadata.json"
#: Staging leftovers (of killed writers) older than this are deleted by later writes.
STALE_STAGING_SECONDS = 3600.0


class EntryNotFoundError(KeyError):
    """No entry for this call (never stored, cleared, evicted): an ordinary cache miss."""


class EntryUnreadableError(Exception):
    """An entry exists but cannot be read (damaged archive, missing file, bad metadata)."""


@dataclass(frozen=True)
class EntryStat:
    """What eviction needs to know of one entry."""

    func_id: str
    args_id: str
    #: Bytes the entry takes in the store (archive and metadata).
    size: int
    #: When the entry was last written or read (seconds since the epoch).
    last_access: float
    #: How many times the entry was read since it was written, or None if the store does not
    #: count hits (the fsspec store: object stores have no atomic append).
    hits: int | None = None
    #: The entry's metadata document when the listing that made this record read it (so a
    #: listing does not read it again); None otherwise.
    metadata: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


class StoreBackend(ABC):
    """Where a ``Memory`` keeps its entries; subclass it and pass it to ``register_store_backend``.

    Subclasses are constructed as ``cls(location, **backend_options)`` and must be picklable
    (``MemorizedResult`` references travel to other processes).

    Attributes
    ----------
    supports_mmap : bool
        Whether ``load_output(..., mmap_mode='r')`` can return memory maps (local files only).
    """

    supports_mmap: ClassVar[bool] = False
    location: str

    # ---- entries ---------------------------------------------------------------------------

    @abstractmethod
    def load_output(self, func_id: str, args_id: str, mmap_mode: str | None) -> Any:
        """The cached result.

        Raises
        ------
        EntryNotFoundError
            If there is no such entry.
        EntryUnreadableError
            If the entry exists but its archive cannot be loaded.
        """

    @abstractmethod
    def read_metadata(self, func_id: str, args_id: str) -> dict[str, Any]:
        """The entry's metadata (raises like :meth:`load_output`)."""

    @abstractmethod
    def write_entry(
        self,
        func_id: str,
        args_id: str,
        output: Any,
        metadata: Mapping[str, Any],
        *,
        compress: Any,
        replace: bool,
    ) -> dict[str, Any]:
        """Store a result atomically; return the metadata stored (with ``size`` added).

        With ``replace=False`` an entry another writer completed meanwhile may be kept instead
        of this one (both hold the result of the same call); with ``replace=True`` this one wins.
        """

    @abstractmethod
    def contains(self, func_id: str, args_id: str) -> bool:
        """Whether a complete entry exists (it is not loaded)."""

    @abstractmethod
    def touch(self, func_id: str, args_id: str) -> None:
        """Record a read of the entry (its last access, and its hit count if the store keeps one).

        Used for least-recently-used eviction and listings; cheap, never raises.
        """

    @abstractmethod
    def remove_entry(self, func_id: str, args_id: str) -> None:
        """Delete one entry (no error if it is already gone)."""

    @abstractmethod
    def entry_location(self, func_id: str, args_id: str) -> str:
        """Where the entry lives, for messages and for opening it with ``zoblib.load``."""

    # ---- functions -------------------------------------------------------------------------

    @abstractmethod
    def read_function_record(self, func_id: str) -> dict[str, Any] | None:
        """The code record stored for the function, or None (none, or unreadable)."""

    @abstractmethod
    def write_function_record(self, func_id: str, record: Mapping[str, Any]) -> None:
        """Store the function's code record atomically."""

    @abstractmethod
    def remove_function(self, func_id: str) -> None:
        """Delete every entry of the function and its code record."""

    # ---- the whole store -------------------------------------------------------------------

    @abstractmethod
    def list_functions(self) -> list[str]:
        """The function ids that have a folder in the store."""

    @abstractmethod
    def list_entries(self, func_id: str) -> list[EntryStat]:
        """The complete entries of one function (partial writes left out)."""

    def iter_entries(self, func_id: str) -> Iterator[EntryStat]:
        """The entries of one function, one at a time (default: :meth:`list_entries`).

        Stores with many entries override it to read them in pages, so that memory stays flat.
        """
        yield from self.list_entries(func_id)

    def entries_by_access(self) -> Iterator[EntryStat]:
        """Every entry, least recently accessed first (default: a scan of every function).

        A store with an index may yield *lower bounds* of the last accesses (hits not recorded
        yet); :meth:`refresh_entry` then gives the truth of one entry, and eviction checks every
        candidate with it before deleting.
        """
        stats = [stat for func_id in self.list_functions() for stat in self.iter_entries(func_id)]
        yield from sorted(stats, key=lambda s: s.last_access)

    def entries_accessed_before(self, cutoff: float) -> Iterator[EntryStat]:
        """Every entry whose files say it was last accessed before ``cutoff`` (a scan).

        What an age limit deletes: read from the entries themselves, never from an index, so
        an entry whose times were set back (a copy that kept them, ``touch -d``) is found.
        """
        for func_id in self.list_functions():
            for stat in self.iter_entries(func_id):
                if stat.last_access < cutoff:
                    yield stat

    def refresh_entry(self, entry: EntryStat) -> EntryStat | None:
        """The entry as it is now, or None if it is gone (default: ``entry`` as it is)."""
        return entry

    def totals(self) -> tuple[int, int] | None:
        """``(entries, bytes)`` of the whole store when known without a scan, else None."""
        return None

    @abstractmethod
    def clear(self) -> None:
        """Delete everything this store holds."""

    def remove_stale_staging(self, func_id: str, older_than: float = STALE_STAGING_SECONDS) -> None:
        """Delete what killed writers left behind in the function's folder (default: nothing).

        Stores whose writes cannot leave partial files (object stores) need not override it.
        """
        del func_id, older_than

    def __repr__(self) -> str:
        return f"{type(self).__name__}(location={self.location!r})"


def now() -> float:
    """The current time, as entries record it (seconds since the epoch)."""
    return time.time()
