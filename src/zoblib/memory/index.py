"""The local store's index: what eviction, limits and listings need, in SQLite (WAL mode).

The entry folders are the truth; the index is a cache of them, kept in
``<store>/.zoblib-index.sqlite3``. It holds one row per entry (function, args id, hash-prefix
folder, size, when written, a *lower bound* of its last access and hit count, code digest), the
running totals (maintained by triggers, so a limit check reads one row) and, per scanned folder,
the mtime seen at its last scan.

How it stays right:

- Writers that use it insert their entry's row after publishing the entry; removals delete the
  row. SQLite's WAL mode and a busy timeout serialise processes; a crash loses nothing the
  folders do not still say.
- A hit appends a byte to the entry's ``hits`` file (the truth) and buffers the new last access
  for the index (written with the buffered rows, see :meth:`EntryIndex.accessed`). A row's
  ``last_access`` is therefore a lower bound (hits not flushed yet, hits by processes that do
  not update the index); eviction checks each candidate against its files before deleting it
  (see :func:`zoblib.memory.eviction.enforce_limits`), so it stays exact LRU.
- Entries written by a process that does not update the index (an older zoblib, a copy, the
  store API with ``index=False``) are picked up by :meth:`EntryIndex.reconcile`: every folder
  whose mtime differs from the one recorded at its last scan is listed again (names only) and
  the rows of that folder made to match. Reconciling runs when a process first uses the index
  (its totals or its eviction order), then at most every :data:`RECONCILE_SECONDS`. Listings
  (``list_entries``, ``iter_entries``, ``zoblib cache ls``) read the folders, not the index.
- Age limits are never applied from the index alone (see
  :func:`zoblib.memory.eviction.enforce_limits`): a user can set an entry's mtimes back with no
  folder's mtime telling. A folder modified in the last
  :data:`RACY_SECONDS` is never recorded as scanned (mtimes are coarse: a change in the same tick
  as the scan would go unseen), so it is listed again next time.
- A missing, truncated or garbage index, or one of another schema, is rebuilt from the folders.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from zoblib.memory.store import EntryStat

INDEX_NAME = ".zoblib-index.sqlite3"
#: Bumped when the schema changes: an index of another version is rebuilt.
SCHEMA_VERSION = 1
#: Automatic limit enforcement reconciles the index with the folders at most this often.
RECONCILE_SECONDS = 30.0
#: A folder changed more recently than this is scanned again next time (coarse mtimes).
RACY_SECONDS = 2.0
#: Rows read per query when iterating (memory stays flat whatever the index holds).
PAGE_ROWS = 1000
_BUSY_TIMEOUT_MS = 30_000
#: A process writes its new rows at least every so many rows and seconds (see EntryIndex.add).
FLUSH_ROWS = 256
FLUSH_SECONDS = 1.0
_UPSERT = "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_DELETE = "DELETE FROM entries WHERE func_id = ? AND args_id = ?"
_ACCESSED = "UPDATE entries SET last_access = max(last_access, ?1) WHERE func_id = ?2 AND args_id = ?3"
#: The indexes with rows not written yet: written at exit.
_PENDING_INDEXES: weakref.WeakSet[EntryIndex] = weakref.WeakSet()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    func_id TEXT NOT NULL,
    args_id TEXT NOT NULL,
    prefix TEXT NOT NULL,
    size INTEGER NOT NULL,
    written REAL NOT NULL,
    last_access REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0,
    code TEXT,
    PRIMARY KEY (func_id, args_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_access ON entries (last_access, func_id, args_id);
CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 0), items INTEGER, bytes INTEGER);
INSERT OR IGNORE INTO totals VALUES (0, 0, 0);
CREATE TRIGGER IF NOT EXISTS entries_added AFTER INSERT ON entries BEGIN
    UPDATE totals SET items = items + 1, bytes = bytes + NEW.size WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS entries_removed AFTER DELETE ON entries BEGIN
    UPDATE totals SET items = items - 1, bytes = bytes - OLD.size WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS entries_resized AFTER UPDATE OF size ON entries BEGIN
    UPDATE totals SET bytes = bytes - OLD.size + NEW.size WHERE id = 0;
END;
CREATE TABLE IF NOT EXISTS folders (path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL) WITHOUT ROWID;
"""

#: Reads one entry folder: its EntryStat, or None if it is not a complete entry (anymore).
EntryReader = Callable[[str, str, str], EntryStat | None]
#: ``(prefix, folder) -> [args id]``: the entry names in one folder.
NameLister = Callable[[str, str], list[str]]


class IndexUnavailableError(Exception):
    """The index cannot be used here (read-only folder, locked for too long, ...)."""


class EntryIndex:
    """One store's index, opened lazily, once per process (reopened after a fork).

    Parameters
    ----------
    root
        The store's folder; the index is ``root/.zoblib-index.sqlite3``.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.path = os.path.join(root, INDEX_NAME)
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        self._lock = threading.RLock()
        self.reconciled_at: float | None = None
        self._pending: list[tuple[Any, ...]] = []
        self._pending_hits: list[tuple[float, str, str]] = []
        self._pending_since = 0.0
        self._pending_pid = os.getpid()  # the process the buffered rows are of

    # ---- the connection --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        self._connection = None
        self.reconciled_at = None
        try:
            try:
                connection = self._open()
            except sqlite3.Error as exc:
                if not _is_corruption(exc):
                    raise
                # Not a database (garbage, truncated), or of another schema: rebuilt from the
                # folders (its folders table is empty, so the next reconcile lists them all).
                self._discard()
                connection = self._open()
        except sqlite3.Error as exc:
            raise IndexUnavailableError(f"{self.path}: {exc}") from exc
        self._connection, self._pid = connection, os.getpid()
        return connection

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if connection.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise sqlite3.DatabaseError(f"{self.path}: WAL mode refused")
            connection.execute("PRAGMA synchronous = NORMAL")  # the index is a cache: no fsync
            # REPLACE deletes the row it replaces: its delete trigger must keep the totals.
            connection.execute("PRAGMA recursive_triggers = ON")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(
                    f"{self.path}: not an index of schema {SCHEMA_VERSION}: {version}"
                )
            if version == 0:
                # Idempotent (IF NOT EXISTS): processes creating the index at once all succeed.
                # A new index knows no folder yet, so every folder is scanned once.
                connection.executescript(_SCHEMA)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            connection.execute("SELECT items FROM totals WHERE id = 0").fetchone()
        except BaseException:
            connection.close()
            raise
        return connection

    def _discard(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path + suffix)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None

    def _run(self, operation: Callable[[sqlite3.Connection], Any], *, flush: bool = True) -> Any:
        """Run ``operation`` on the connection; a damaged index is rebuilt once and retried."""
        with self._lock:
            if flush and (self._pending or self._pending_hits):
                self.flush()
            try:
                return operation(self._connect())
            except sqlite3.Error as exc:
                if not _is_corruption(exc):
                    raise IndexUnavailableError(f"{self.path}: {exc}") from exc
            self.close()
            self._discard()
            try:
                return operation(self._connect())
            except sqlite3.Error as exc:
                raise IndexUnavailableError(f"{self.path}: {exc}") from exc

    # ---- rows ------------------------------------------------------------------------------

    def add(self, stat: EntryStat, prefix: str, written: float, code: str | None = None) -> None:
        """Record an entry just published (replacing the row of an entry it replaced).

        Rows are buffered and written in one transaction every :data:`FLUSH_ROWS` rows or
        :data:`FLUSH_SECONDS`, before any other use of the index, and at exit: a write costs
        no transaction of its own. A process killed with rows pending loses nothing: their
        entries are in their folders, which the next reconcile lists.
        """
        row = (stat.func_id, stat.args_id, prefix, stat.size, written, stat.last_access, stat.hits or 0, code)
        with self._lock:
            self._buffered()
            self._pending.append(row)
            self._flush_if_due()

    def accessed(self, func_id: str, args_id: str, when: float) -> None:
        """Record a hit at ``when`` (the ``hits`` file's mtime), buffered as :meth:`add` is.

        Only the last access is raised (never lowered: ``max``); hit counts stay those the
        entries' files gave when last read. Without it, a cache whose entries were all hit since
        they were written would be in write order in the index, and eviction would check every
        entry against its files to find the least recently used (exact still, but a scan).
        """
        with self._lock:
            self._buffered()
            self._pending_hits.append((when, func_id, args_id))
            self._flush_if_due()

    def _buffered(self) -> None:
        if self._pending_pid != os.getpid():
            # Inherited across a fork: the parent writes its own rows; this process writes its.
            self._pending, self._pending_hits, self._pending_pid = [], [], os.getpid()
        if not self._pending and not self._pending_hits:
            self._pending_since = time.monotonic()
            _PENDING_INDEXES.add(self)

    def _flush_if_due(self) -> None:
        count = len(self._pending) + len(self._pending_hits)
        if count >= FLUSH_ROWS or time.monotonic() - self._pending_since > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows and hits."""
        with self._lock:
            if self._pending_pid != os.getpid():
                self._pending, self._pending_hits = [], []  # a forked child's copy of its parent's
                return
            if not self._pending and not self._pending_hits:
                return
            rows, self._pending = self._pending, []
            hits, self._pending_hits = self._pending_hits, []

            def add(connection: sqlite3.Connection) -> None:
                # Rows first: a hit on an entry written in the same batch finds its row.
                with _transaction(connection):
                    connection.executemany(_UPSERT, rows)
                    connection.executemany(_ACCESSED, hits)

            self._run(add, flush=False)

    def refresh(self, stat: EntryStat) -> None:
        """Record what an entry's files say of its size, last access and hits."""
        self._run(
            lambda c: c.execute(
                "UPDATE entries SET size = ?, last_access = ?, hits = ? WHERE func_id = ? AND args_id = ?",
                (stat.size, stat.last_access, stat.hits or 0, stat.func_id, stat.args_id),
            )
        )

    def remove(self, func_id: str, args_id: str) -> None:
        self._run(lambda c: c.execute(_DELETE, (func_id, args_id)))

    def remove_function(self, func_id: str) -> None:
        def remove(connection: sqlite3.Connection) -> None:
            with _transaction(connection):
                connection.execute("DELETE FROM entries WHERE func_id = ?", (func_id,))
                connection.execute(
                    "DELETE FROM folders WHERE substr(path, 1, length(?1)) = ?1", (func_id + "/",)
                )

        self._run(remove)

    def clear(self) -> None:
        def clear(connection: sqlite3.Connection) -> None:
            with _transaction(connection):
                connection.execute("DELETE FROM entries")
                connection.execute("DELETE FROM folders")

        self._run(clear)

    # ---- queries ---------------------------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        """(entries, bytes) of the whole store, as far as the index knows (rows pending added)."""
        with self._lock:
            pending = len(self._pending), sum(row[3] for row in self._pending)
            row = self._run(
                lambda c: c.execute("SELECT items, bytes FROM totals WHERE id = 0").fetchone(), flush=False
            )
        return int(row[0]) + pending[0], int(row[1]) + pending[1]

    def functions(self) -> list[tuple[str, int, int, float | None, int]]:
        """(func_id, entries, bytes, latest access lower bound, hits lower bound) per function."""
        rows = self._run(
            lambda c: c.execute(
                "SELECT func_id, COUNT(*), SUM(size), MAX(last_access), SUM(hits) FROM entries "
                "GROUP BY func_id ORDER BY func_id"
            ).fetchall()
        )
        return [(r[0], int(r[1]), int(r[2] or 0), r[3], int(r[4] or 0)) for r in rows]

    def by_access(self) -> Iterator[EntryStat]:
        """Every entry, least recently accessed first (by the index's lower bounds), paged."""
        after: tuple[float, str, str] = (float("-inf"), "", "")

        def page(connection: sqlite3.Connection) -> list[Any]:
            return connection.execute(
                "SELECT func_id, args_id, size, last_access, hits FROM entries "
                "WHERE (last_access, func_id, args_id) > (?, ?, ?) "
                "ORDER BY last_access, func_id, args_id LIMIT ?",
                (*after, PAGE_ROWS),
            ).fetchall()

        while True:
            rows: list[Any] = self._run(page)
            for func_id, args_id, size, last_access, hits in rows:
                yield EntryStat(func_id, args_id, int(size), float(last_access), hits=int(hits))
            if len(rows) < PAGE_ROWS:
                return
            last = rows[-1]
            after = (float(last[3]), last[0], last[1])

    def of_function(self, func_id: str) -> Iterator[EntryStat]:
        """The entries of one function, by args id, paged."""
        after = ""

        def page(connection: sqlite3.Connection) -> list[Any]:
            return connection.execute(
                "SELECT args_id, size, last_access, hits FROM entries "
                "WHERE func_id = ? AND args_id > ? ORDER BY args_id LIMIT ?",
                (func_id, after, PAGE_ROWS),
            ).fetchall()

        while True:
            rows: list[Any] = self._run(page)
            for args_id, size, last_access, hits in rows:
                yield EntryStat(func_id, args_id, int(size), float(last_access), hits=int(hits))
            if len(rows) < PAGE_ROWS:
                return
            after = rows[-1][0]

    # ---- reconciling with the folders ------------------------------------------------------

    def reconcile(
        self,
        functions: Iterable[str],
        folders_of: Callable[[str], Iterable[tuple[str, str]]],
        names_in: NameLister,
        read_entry: EntryReader,
    ) -> int:
        """Make the rows of every changed folder match the folder; return how many were listed.

        Parameters
        ----------
        functions
            The function ids that have a folder in the store.
        folders_of
            ``func_id -> [(prefix, path)]``: the folders that hold its entries (``''`` for
            entries of the old flat layout directly in the function's folder).
        names_in
            ``(prefix, path) -> [args id]``: the entry names of a folder.
        read_entry
            ``(func_id, args_id, path) -> EntryStat or None``: reads a new entry's files.
        """
        listed = 0
        known_functions = set()
        batch = _ReconcileBatch()
        for func_id in functions:
            known_functions.add(func_id)
            recorded = dict(self._recorded_folders(func_id))
            for prefix, path in folders_of(func_id):
                key = f"{func_id}/{prefix}"
                try:
                    mtime_ns = os.stat(path).st_mtime_ns
                except OSError:
                    continue
                if recorded.get(key) == mtime_ns:
                    continue
                listed += 1
                # The mtime is read before the names: a change made while listing moves it
                # again, and the folder is listed again next time.
                racy = time.time() - mtime_ns / 1e9 < RACY_SECONDS
                folder = (key, -1 if racy else mtime_ns)
                self._reconcile_folder(func_id, prefix, path, names_in(prefix, path), read_entry, batch)
                batch.folders.append(folder)
                if batch.full():
                    self._run(batch.apply)
        self._run(batch.apply)
        # Functions whose folder went (removed by another process) lose their rows.
        indexed = {row[0] for row in self.functions()}
        for func_id in indexed - known_functions:
            self.remove_function(func_id)
        self.reconciled_at = time.monotonic()
        return listed

    def _recorded_folders(self, func_id: str) -> list[tuple[str, int]]:
        def select(connection: sqlite3.Connection) -> list[tuple[str, int]]:
            return connection.execute(
                "SELECT path, mtime_ns FROM folders WHERE substr(path, 1, length(?1)) = ?1",
                (func_id + "/",),
            ).fetchall()

        rows: list[tuple[str, int]] = self._run(select)
        return rows

    def _reconcile_folder(
        self,
        func_id: str,
        prefix: str,
        path: str,
        names: list[str],
        read_entry: EntryReader,
        batch: _ReconcileBatch,
    ) -> None:
        def select(connection: sqlite3.Connection) -> list[tuple[str]]:
            if not prefix:  # the first layout's entries: any args id
                return connection.execute(
                    "SELECT args_id FROM entries WHERE func_id = ? AND prefix = ''", (func_id,)
                ).fetchall()
            # A prefix folder's args ids start with the prefix: a range of the primary key, so
            # listing one folder reads its rows, not every row of the function.
            following = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            return connection.execute(
                "SELECT args_id FROM entries WHERE func_id = ? AND args_id >= ? AND args_id < ? "
                "AND prefix = ?",
                (func_id, prefix, following, prefix),
            ).fetchall()

        rows: list[tuple[str]] = self._run(select)
        indexed = {row[0] for row in rows}
        present = set(names)
        for args_id in present - indexed:
            stat = read_entry(func_id, args_id, os.path.join(path, args_id))
            if stat is not None:
                batch.added.append(
                    (
                        func_id,
                        args_id,
                        prefix,
                        stat.size,
                        stat.last_access,
                        stat.last_access,
                        stat.hits or 0,
                        None,
                    )
                )
        batch.gone.extend((func_id, args_id) for args_id in indexed - present)


class _ReconcileBatch:
    """The rows and folder mtimes a reconcile found, written a few folders per transaction.

    A transaction per folder would write the totals' page once per folder (256 per function)
    and so bring WAL checkpoints, each an fsync, many times per reconcile; a batch's rows are
    bounded (:data:`PAGE_ROWS` times 10), so memory stays flat when a whole index is rebuilt.
    A folder's mtime is recorded with its rows, in the same transaction.
    """

    def __init__(self) -> None:
        self.added: list[tuple[Any, ...]] = []
        self.gone: list[tuple[str, str]] = []
        self.folders: list[tuple[str, int]] = []

    def full(self) -> bool:
        return len(self.added) + len(self.gone) >= 10 * PAGE_ROWS or len(self.folders) >= 256

    def apply(self, connection: sqlite3.Connection) -> None:
        if not self.folders:
            return
        with _transaction(connection):
            connection.executemany(_UPSERT, self.added)
            connection.executemany(_DELETE, self.gone)
            connection.executemany("INSERT OR REPLACE INTO folders VALUES (?, ?)", self.folders)
        self.added, self.gone, self.folders = [], [], []


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _is_corruption(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    words = ("malformed", "not a database", "no such table", "no such column", "corrupt", "schema")
    return any(word in text for word in words)


@atexit.register
def _flush_at_exit() -> None:
    for index in list(_PENDING_INDEXES):
        with contextlib.suppress(Exception):
            index.flush()
