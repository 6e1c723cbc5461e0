"""The local store: entries as folders on a file system, published by renaming.

Layout under the store's folder (``<cache folder>/zoblib/`` for ``Memory("<cache folder>")``)::

    .zoblib-index.sqlite3               the index (a cache of the folders; see memory/index.py)
    <module>/<qualified name>/          one folder per function
        func_code.json                  the code record (digest and source)
        <2 hex>/                        hash-prefix folders: the args id's first two characters
            <args id>/                  one folder per cached call
                output.pickle           a small result (pickled under 64 KiB): a plain pickle
                                        followed by a CRC-32 trailer (pickle stops before it)
                or output.zarr/         any other result: a zoblib archive (directory ...
                or output.pkl           ... or ZIP file)
                metadata.json           duration, input summary, time, size; its mtime is
                                        when the entry was written
                hits                    one byte per hit (its size is the count; absent until
                                        the first hit); its mtime is the last hit
        <args id>/                      an entry of the first layout (no prefix folder): still
                                        read, listed, pruned and cleared, never written

An entry is written whole in a hidden staging folder beside its final name, then renamed into
place, so a reader finds either no entry or a complete one; ``zoblib.load`` opens the result
directly (a plain pickle is a joblib file to it). The first write also leaves a ``.gitignore``
in the cache folder (joblib 1.6 does).

The 256 prefix folders keep folders small (a million entries: about 4,000 per folder), which
ext4's hashed directories and NFS's READDIR both handle well; a lookup is one path, whatever the
cache holds.

A hit appends one byte to ``hits`` (``O_APPEND``): each such ``write`` is atomic, so processes
hitting one entry at once lose no count and take no lock. The entry's last access is the later
of the two mtimes. A recomputed entry is a new folder, without ``hits``: its count restarts at 0.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
import secrets
import shutil
import stat
import struct
import time
import warnings
import zlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from zoblib._processes import process_alive
from zoblib.archive import dump, load
from zoblib.errors import ArchiveError, ArchiveNotFoundError, CacheWarning
from zoblib.memory.filesystems import is_network_file_system
from zoblib.memory.index import RECONCILE_SECONDS, EntryIndex, IndexUnavailableError
from zoblib.memory.store import (
    FUNCTION_RECORD_NAME,
    METADATA_NAME,
    STALE_STAGING_SECONDS,
    EntryNotFoundError,
    EntryStat,
    EntryUnreadableError,
    StoreBackend,
)

#: The store's folder inside a ``Memory``'s location (joblib's is ``joblib``).
STORE_FOLDER_NAME = "zoblib"
GITIGNORE_NAME = ".gitignore"
GITIGNORE_TEXT = "# Created by zoblib automatically.\n*\n"
#: The archive's name in an entry, by container.
OUTPUT_NAMES = {"zarr": "output.zarr", "zip": "output.pkl"}
#: A small result's file: a plain pickle, then :data:`_TRAILER_MARK` and its CRC-32.
SMALL_OUTPUT_NAME = "output.pickle"
#: Results whose pickle stays under this are stored as one small file, not as an archive
#: (the archive's own ``inline_threshold``: arrays this small are never memory-mapped anyway).
SMALL_RESULT_BYTES = 64 << 10
_TRAILER_MARK = b"zoblib-crc32"
_TRAILER = struct.Struct("<I")
_TRAILER_SIZE = len(_TRAILER_MARK) + _TRAILER.size
STAGING_MARK = ".zoblib-tmp-"
#: The per-entry file a hit appends one byte to.
HITS_NAME = "hits"
#: How many characters of the args id name an entry's prefix folder.
PREFIX_LENGTH = 2
_HITS_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
#: How often a writer retries publishing when other writers keep replacing the same entry.
_PUBLISH_ATTEMPTS = 8
#: A dead writer's staging folder younger than this is left alone (it may be on another host).
_DEAD_WRITER_GRACE_SECONDS = 60.0


def _tree_size(path: str) -> int:
    if not os.path.isdir(path):
        return os.path.getsize(path)
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total


def _write_json_atomically(path: str, document: Mapping[str, Any]) -> None:
    parent, name = os.path.split(path)
    staging = os.path.join(parent, f".{name}{STAGING_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    with open(staging, "w", encoding="utf-8") as file:
        json.dump(document, file)
    os.replace(staging, path)


class _TooBig(Exception):
    """The result's pickle outgrew :data:`SMALL_RESULT_BYTES`: it is stored as an archive."""


class _BoundedBuffer:
    """A file for ``pickle`` that refuses to grow past a size (so a big result costs nothing)."""

    def __init__(self, limit: int) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise _TooBig
        self.parts.append(bytes(data))
        return len(data)


def _big_buffer(buffer: pickle.PickleBuffer) -> bool:
    if buffer.raw().nbytes > SMALL_RESULT_BYTES:
        raise _TooBig
    return True  # serialised in-band


def small_pickle(value: Any) -> bytes | None:
    """``value`` as a small result's file content, or None if it is big or plain pickle fails.

    The pickle is followed by a trailer (a mark and the pickle's CRC-32), which ``pickle``,
    joblib and ``zoblib.load`` never read: they stop at the pickle's end.

    Examples
    --------
    >>> load_small(small_pickle([1, 2, 3]), "x")
    [1, 2, 3]
    >>> small_pickle(bytes(1 << 20)) is None
    True
    """
    buffer = _BoundedBuffer(SMALL_RESULT_BYTES)
    try:
        pickle.Pickler(buffer, protocol=5, buffer_callback=_big_buffer).dump(value)
    except _TooBig:
        return None
    except Exception:  # anything plain pickle refuses goes to the archive (and cloudpickle)
        return None
    data = b"".join(buffer.parts)
    return data + _TRAILER_MARK + _TRAILER.pack(zlib.crc32(data))


def load_small(content: bytes, path: str) -> Any:
    """The value of a small result's file content (its CRC-32 checked first)."""
    body, mark, crc = (
        content[:-_TRAILER_SIZE],
        content[-_TRAILER_SIZE : -_TRAILER.size],
        content[-_TRAILER.size :],
    )
    if len(content) < _TRAILER_SIZE or mark != _TRAILER_MARK or _TRAILER.unpack(crc)[0] != zlib.crc32(body):
        raise EntryUnreadableError(f"{path}: checksum mismatch (damaged or truncated file)")
    try:
        return pickle.loads(body)
    except Exception as exc:  # unpickling can fail in any way (a class that moved, ...)
        raise EntryUnreadableError(f"{path}: {type(exc).__name__}: {exc}") from exc


class LocalStoreBackend(StoreBackend):
    """Entries as folders under ``location`` on a local (or network) file system.

    Parameters
    ----------
    location
        The store's folder (created on first write): ``Memory("cache")`` makes a store at
        ``cache/zoblib``, and a ``MemorizedResult`` rebuilt from ``store_backend.location``
        finds the same entries.
    container : {'zarr', 'zip'}, default 'zarr'
        The archive container of results that are not small: a Zarr directory
        (``output.zarr``) or one ZIP file (``output.pkl``). Both memory-map; the directory is
        faster to write and read here. Small results (pickled under 64 KiB) are one file.
    fsync : bool, default False
        Flush each entry to disk before publishing it. Off by default, as in joblib: a cache
        can be recomputed, and an entry damaged by a power cut fails its checksums and is
        recomputed (memory-mapped arrays only with ``verify``).
    verify : bool, default False
        With ``mmap_mode``, check memory-mapped results against their checksums on every hit
        (``load(..., verify=True)``: one read of the result's data); a damaged entry is then
        recomputed like any other. Without it a hit costs no read of the data.
    index : bool or None, default None
        Keep the SQLite index (``.zoblib-index.sqlite3``) that eviction, limits and counts
        use. None: yes, unless the folder is on a network file system (NFS, SMB, ...; SQLite's
        locks are unsafe there) or the index cannot be opened (a read-only cache); then those
        scan the folders, as they always do on stores without an index.
    """

    supports_mmap: ClassVar[bool] = True

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        container: str = "zarr",
        fsync: bool = False,
        verify: bool = False,
        index: bool | None = None,
    ):
        if container not in OUTPUT_NAMES:
            raise ValueError(f"container must be one of {sorted(OUTPUT_NAMES)}, got {container!r}")
        self.location = os.fspath(location)
        self.root = os.path.abspath(self.location)
        self.container = container
        self.fsync = fsync
        self.verify = verify
        self.index_option = index
        self._output_name = OUTPUT_NAMES[container]
        self._function_dirs: dict[str, str] = {}
        self._ready_dirs: set[str] = set()
        self._folder_ready = False
        self._index: EntryIndex | None = None
        self._index_state: bool | None = None  # None: not decided yet in this process

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_local, (self.location, self.container, self.fsync, self.verify, self.index_option))

    # ---- the cache folder ------------------------------------------------------------------

    def cache_directory(self) -> str:
        """The folder that gets the ``.gitignore``: the cache folder the user named.

        joblib's rule: the parent of a store folder named ``zoblib`` (the store of
        ``Memory("cache")`` is ``cache/zoblib``), else the store's folder itself.
        """
        parent, name = os.path.split(self.location)
        return parent if parent and name == STORE_FOLDER_NAME else self.location

    def _prepare_folder(self) -> None:
        """Create the store's folder and, once per store, the cache folder's ``.gitignore``.

        Done on the first write, not at construction: a read-only cache that is only read
        must neither fail nor warn. A ``.gitignore`` already there (the user's) is kept.
        """
        if self._folder_ready:
            return
        os.makedirs(self.root, exist_ok=True)
        gitignore = os.path.join(self.cache_directory(), GITIGNORE_NAME)
        if not os.path.lexists(gitignore):
            try:
                with open(gitignore, "x", encoding="utf-8") as file:
                    file.write(GITIGNORE_TEXT)
            except FileExistsError:
                pass  # another process wrote it meanwhile
            except OSError as exc:
                warnings.warn(CacheWarning(f"Unable to write {gitignore}. Exception: {exc}."), stacklevel=4)
        self._folder_ready = True

    # ---- the index -------------------------------------------------------------------------

    def entry_index(self) -> EntryIndex | None:
        """The store's index, or None where it is off (see ``index``) or unusable here."""
        if self._index_state is None:
            wanted = self.index_option
            if wanted is None:
                if not os.path.isdir(self.root):
                    return None  # nothing stored yet: decided once the folder exists
                wanted = not is_network_file_system(self.root)
            self._index_state = bool(wanted)
            if self._index_state:
                self._index = EntryIndex(self.root)
        return self._index if self._index_state else None

    def _index_failed(self) -> None:
        # Read-only, locked for too long, on a file system that refuses WAL: this process goes
        # on without it; entries it writes are picked up by the next process that reconciles.
        if self._index is not None:
            self._index.close()
        self._index_state = False

    def _indexed(self, action: Any) -> Any:
        index = self.entry_index()
        if index is None:
            return None
        try:
            return action(index)
        except (IndexUnavailableError, OSError):
            self._index_failed()
            return None

    def reconcile_index(self, *, force: bool = True) -> int | None:
        """Bring the index up to date with the folders (see :mod:`zoblib.memory.index`).

        Parameters
        ----------
        force
            Reconcile now; otherwise only if this process has not for :data:`RECONCILE_SECONDS`.

        Returns
        -------
        int or None
            How many folders were listed again (0: the index was up to date), or None when
            the store keeps no index.
        """
        index = self.entry_index()
        if index is None:
            return None
        recent = (
            index.reconciled_at is not None and time.monotonic() - index.reconciled_at < RECONCILE_SECONDS
        )
        if not force and recent:
            return 0
        listed: int | None = self._indexed(
            lambda i: i.reconcile(self.list_functions(), self._entry_folders, _entry_names, self._read_entry)
        )
        return listed

    def _entry_folders(self, func_id: str) -> Iterator[tuple[str, str]]:
        function_dir = self._function_dir(func_id)
        yield "", function_dir  # entries of the first layout, and the prefix folders themselves
        for name in _visible_dirs(function_dir):
            if _is_prefix(name):
                yield name, os.path.join(function_dir, name)

    # ---- paths -----------------------------------------------------------------------------

    def _function_dir(self, func_id: str) -> str:
        # Cached: building paths is a good part of a cache hit's few microseconds.
        path = self._function_dirs.get(func_id)
        if path is None:
            path = self._function_dirs[func_id] = os.path.join(self.root, *func_id.split("/"))
        return path

    def _entry_dir(self, func_id: str, args_id: str) -> str:
        return f"{self._function_dir(func_id)}{os.sep}{args_id[:PREFIX_LENGTH]}{os.sep}{args_id}"

    def _legacy_dir(self, func_id: str, args_id: str) -> str:
        return f"{self._function_dir(func_id)}{os.sep}{args_id}"

    def _existing_dir(self, func_id: str, args_id: str) -> str:
        """The entry's folder: the hash-prefix one, or the first layout's if only that exists."""
        entry = self._entry_dir(func_id, args_id)
        if os.path.isdir(entry):
            return entry
        legacy = self._legacy_dir(func_id, args_id)
        return legacy if os.path.isdir(legacy) else entry

    def entry_location(self, func_id: str, args_id: str) -> str:
        if not args_id:
            return self._function_dir(func_id) + os.sep
        return self._existing_dir(func_id, args_id)

    def _output_path(self, entry: str) -> str:
        # The configured container first; an entry written with the other one still loads.
        preferred = os.path.join(entry, OUTPUT_NAMES[self.container])
        if os.path.lexists(preferred):
            return preferred
        for name in OUTPUT_NAMES.values():
            other = os.path.join(entry, name)
            if os.path.lexists(other):
                return other
        return preferred

    # ---- entries ---------------------------------------------------------------------------

    def load_output(self, func_id: str, args_id: str, mmap_mode: str | None) -> Any:
        entry = self._entry_dir(func_id, args_id)
        small = f"{entry}{os.sep}{SMALL_OUTPUT_NAME}"
        try:
            content = _read_file(small)
        except FileNotFoundError:
            if not os.path.isdir(entry):
                entry = self._legacy_dir(func_id, args_id)
                if not os.path.isdir(entry):
                    raise EntryNotFoundError(entry) from None  # a plain miss: two stats
                return self._load_archive(entry, mmap_mode)
            # The folder is there: either it holds an archive, or it was published between the
            # open and the stat (a writer renaming it into place), small file included.
            try:
                content = _read_file(small)
            except FileNotFoundError:
                return self._load_archive(entry, mmap_mode)
            except OSError as exc:
                raise EntryUnreadableError(f"{small}: {exc}") from exc
        except OSError as exc:
            raise EntryUnreadableError(f"{small}: {exc}") from exc
        return load_small(content, small)

    def _load_archive(self, entry: str, mmap_mode: str | None) -> Any:
        path = f"{entry}{os.sep}{self._output_name}"
        try:
            try:
                # The cache trusts its own entries: a process-wide safe load does not apply.
                return load(path, mmap_mode=mmap_mode, verify=self.verify, safe=False)
            except ArchiveNotFoundError:
                other = self._output_path(entry)
                if other == path:
                    raise
                return load(other, mmap_mode=mmap_mode, verify=self.verify, safe=False)
        except ArchiveNotFoundError as exc:
            if os.path.exists(os.path.join(entry, METADATA_NAME)):
                raise EntryUnreadableError(f"{entry}: the result's archive is missing") from exc
            raise EntryNotFoundError(entry) from exc
        except ArchiveError as exc:
            raise EntryUnreadableError(str(exc)) from exc
        except Exception as exc:  # unpickling can fail in any way (a class that moved, ...)
            raise EntryUnreadableError(f"{path}: {type(exc).__name__}: {exc}") from exc

    def read_metadata(self, func_id: str, args_id: str) -> dict[str, Any]:
        entry = self._existing_dir(func_id, args_id)
        try:
            with open(os.path.join(entry, METADATA_NAME), "rb") as file:
                document = json.load(file)
        except FileNotFoundError as exc:
            if os.path.isdir(entry):
                raise EntryUnreadableError(f"{entry}: its {METADATA_NAME} is missing") from exc
            raise EntryNotFoundError(entry) from exc
        except (OSError, ValueError) as exc:
            raise EntryUnreadableError(f"{entry}: unreadable {METADATA_NAME}: {exc}") from exc
        if not isinstance(document, dict):
            raise EntryUnreadableError(f"{entry}: {METADATA_NAME} does not hold an object")
        return document

    def contains(self, func_id: str, args_id: str) -> bool:
        if os.path.exists(f"{self._entry_dir(func_id, args_id)}{os.sep}{METADATA_NAME}"):
            return True
        return os.path.exists(f"{self._legacy_dir(func_id, args_id)}{os.sep}{METADATA_NAME}")

    def touch(self, func_id: str, args_id: str) -> None:
        # One byte appended: O_APPEND makes the seek and the write one atomic step, so
        # concurrent hits each add their byte (no lock, no read-modify-write), and the write
        # sets the file's mtime, the last access (atime, which many file systems do not keep,
        # is not relied on). An entry renamed away meanwhile has no folder at this path, so
        # O_CREAT cannot make a stray one. Failures (a read-only cache) are silent: the hit
        # still loads, uncounted. The index gets the new last access, buffered (index.py).
        try:
            descriptor = os.open(
                f"{self._entry_dir(func_id, args_id)}{os.sep}{HITS_NAME}", _HITS_FLAGS, 0o666
            )
        except FileNotFoundError:
            try:
                descriptor = os.open(
                    f"{self._legacy_dir(func_id, args_id)}{os.sep}{HITS_NAME}", _HITS_FLAGS, 0o666
                )
            except OSError:
                return
        except OSError:
            return
        try:
            os.write(descriptor, b"\x01")
            when = os.fstat(descriptor).st_mtime  # the truth the index must not exceed
        except OSError:
            return
        finally:
            os.close(descriptor)
        index = self._index if self._index_state else self.entry_index()
        if index is not None:
            try:
                index.accessed(func_id, args_id, when)
            except (IndexUnavailableError, OSError):
                self._index_failed()

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
        parent = os.path.join(self._function_dir(func_id), args_id[:PREFIX_LENGTH])
        staging = self._staging_name(parent, args_id)
        self._make_staging(parent, staging)
        try:
            stored = dict(metadata)
            content = small_pickle(output)
            if content is not None:
                self._write_file(os.path.join(staging, SMALL_OUTPUT_NAME), content)
                stored["size"] = len(content)
                stored["container"] = "pickle"
            else:
                dump(output, os.path.join(staging, self._output_name), compress=compress, fsync=self.fsync)
                stored["size"] = _tree_size(staging)
                stored["container"] = self.container
            # metadata.json is written last: an entry folder without it is incomplete.
            document = json.dumps(stored).encode()
            # Its mtime, not the clock, is what the index records: the index then holds exactly
            # what a scan of the files would read (renaming the folder keeps the file's mtime).
            written = self._write_file(os.path.join(staging, METADATA_NAME), document)
            listed_size = int(stored["size"])  # what listings read back from metadata.json
            stored["size"] += len(document)
            target = os.path.join(parent, args_id)
            self._publish(staging, target, replace=replace)
        finally:
            if os.path.lexists(staging):
                shutil.rmtree(staging, ignore_errors=True)
        if replace:  # a damaged or expired entry of the first layout goes with its replacement
            self._remove_tree(self._legacy_dir(func_id, args_id))
        entry_stat = EntryStat(func_id, args_id, listed_size, written, hits=0)
        self._indexed(lambda i: i.add(entry_stat, args_id[:PREFIX_LENGTH], written))
        return stored

    def _make_staging(self, parent: str, staging: str) -> None:
        if parent not in self._ready_dirs:
            self._prepare_folder()
            os.makedirs(parent, exist_ok=True)
            self._ready_dirs.add(parent)
        try:
            os.mkdir(staging)
        except FileNotFoundError:  # cleared by another process since: made again
            self._ready_dirs.discard(parent)
            os.makedirs(parent, exist_ok=True)
            os.mkdir(staging)

    def _write_file(self, path: str, content: bytes) -> float:
        """Write ``content`` to a new file; return the file's mtime."""
        with open(path, "wb") as file:
            file.write(content)
            file.flush()
            if self.fsync:
                os.fsync(file.fileno())
            return os.fstat(file.fileno()).st_mtime

    def _staging_name(self, parent: str, name: str) -> str:
        return os.path.join(parent, f".{name}{STAGING_MARK}{os.getpid()}-{secrets.token_hex(4)}")

    def _publish(self, staging: str, target: str, *, replace: bool) -> None:
        """Rename ``staging`` to ``target``; an existing complete entry is kept or replaced.

        rename() onto a non-empty folder fails, so replacing takes two renames: readers in
        between find no entry (an ordinary miss), never a mixed one.
        """
        for _ in range(_PUBLISH_ATTEMPTS):
            try:
                os.rename(staging, target)
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            if not replace and os.path.exists(os.path.join(target, METADATA_NAME)):
                return  # another writer stored this call meanwhile: its entry is as good
            retired = self._staging_name(os.path.dirname(target), os.path.basename(target)) + "-old"
            try:
                os.rename(target, retired)
            except FileNotFoundError:
                continue
            shutil.rmtree(retired, ignore_errors=True)
        # Other writers kept winning the race; the entry they left is complete.

    def remove_entry(self, func_id: str, args_id: str) -> None:
        self._remove_tree(self._entry_dir(func_id, args_id))
        self._remove_tree(self._legacy_dir(func_id, args_id))
        self._indexed(lambda i: i.remove(func_id, args_id))

    def _remove_tree(self, path: str) -> None:
        # Renamed away first so that no reader ever sees a half-deleted entry.
        parent, name = os.path.split(path)
        retired = self._staging_name(parent, name) + "-old"
        try:
            os.rename(path, retired)
        except FileNotFoundError:
            return
        shutil.rmtree(retired, ignore_errors=True)

    def remove_stale_staging(self, func_id: str, older_than: float = STALE_STAGING_SECONDS) -> None:
        function_dir = self._function_dir(func_id)
        current = time.time()
        for folder in [function_dir, *(path for prefix, path in self._entry_folders(func_id) if prefix)]:
            try:
                candidates = [e for e in os.scandir(folder) if STAGING_MARK in e.name]
            except OSError:
                continue
            for entry in candidates:
                _remove_if_stale(entry, current, older_than)

    # ---- functions -------------------------------------------------------------------------

    def read_function_record(self, func_id: str) -> dict[str, Any] | None:
        try:
            with open(os.path.join(self._function_dir(func_id), FUNCTION_RECORD_NAME), "rb") as file:
                document = json.load(file)
        except (OSError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def write_function_record(self, func_id: str, record: Mapping[str, Any]) -> None:
        function_dir = self._function_dir(func_id)
        self._prepare_folder()
        os.makedirs(function_dir, exist_ok=True)
        _write_json_atomically(os.path.join(function_dir, FUNCTION_RECORD_NAME), record)

    def remove_function(self, func_id: str) -> None:
        self._remove_tree(self._function_dir(func_id))
        self._ready_dirs.clear()
        self._indexed(lambda i: i.remove_function(func_id))

    # ---- the whole store -------------------------------------------------------------------

    def list_functions(self) -> list[str]:
        functions: list[str] = []
        for module in _visible_dirs(self.root):
            functions.extend(f"{module}/{name}" for name in _visible_dirs(os.path.join(self.root, module)))
        return sorted(functions)

    def list_entries(self, func_id: str) -> list[EntryStat]:
        return list(self.iter_entries(func_id))

    def iter_entries(self, func_id: str) -> Iterator[EntryStat]:
        """The complete entries of one function, read folder by folder (memory stays flat)."""
        for prefix, folder in self._entry_folders(func_id):
            for args_id in _entry_names(prefix, folder):
                stat_ = self._read_entry(func_id, args_id, os.path.join(folder, args_id), keep_metadata=True)
                if stat_ is not None:
                    yield stat_

    def entries_accessed_before(self, cutoff: float) -> Iterator[EntryStat]:
        """Every entry last accessed before ``cutoff``, by its files' mtimes (not the index).

        Two stats per entry (``metadata.json`` and ``hits``); only the old entries' metadata
        is read. The index is not asked: its last accesses are right for everything zoblib
        does (writes, hits, entries it picks up), but a user can set an entry's mtimes back
        (``cp -p``/``rsync -t`` of a cache over another, ``touch -d``) without its folder's
        mtime changing, which nothing short of this scan sees.
        """
        for func_id in self.list_functions():
            for prefix, folder in self._entry_folders(func_id):
                for args_id in _entry_names(prefix, folder):
                    entry = os.path.join(folder, args_id)
                    try:
                        written = os.stat(os.path.join(entry, METADATA_NAME)).st_mtime
                    except OSError:
                        written = None  # damaged or gone: _read_entry decides
                    if (
                        written is not None
                        and max(written, _read_hits(entry + os.sep + HITS_NAME)[1]) >= cutoff
                    ):
                        continue
                    found = self._read_entry(func_id, args_id, entry)
                    if found is not None and found.last_access < cutoff:
                        yield found

    def _read_entry(
        self, func_id: str, args_id: str, entry: str, keep_metadata: bool = False
    ) -> EntryStat | None:
        """The entry's record from its files; ``keep_metadata``: with its metadata document."""
        metadata_path = os.path.join(entry, METADATA_NAME)
        hits, last_hit = _read_hits(os.path.join(entry, HITS_NAME))
        metadata: dict[str, Any] | None = None
        try:
            last_access = os.stat(metadata_path).st_mtime
            with open(metadata_path, "rb") as file:
                document = json.load(file)
            size = int(document["size"]) + hits
            if keep_metadata and isinstance(document, dict):
                metadata = document
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged entry still takes room: count it, so eviction can reclaim it.
            try:
                last_access = os.stat(entry).st_mtime
            except OSError:
                return None  # removed meanwhile
            size = _tree_size(entry)
        return EntryStat(func_id, args_id, size, max(last_access, last_hit), hits=hits, metadata=metadata)

    def refresh_entry(self, entry: EntryStat) -> EntryStat | None:
        """What the entry's files say now (None: gone); the index learns it too."""
        found = None
        for path in (
            self._entry_dir(entry.func_id, entry.args_id),
            self._legacy_dir(entry.func_id, entry.args_id),
        ):
            if os.path.isdir(path):
                found = self._read_entry(entry.func_id, entry.args_id, path)
                if found is not None:
                    break
        if found is None:
            self._indexed(lambda i: i.remove(entry.func_id, entry.args_id))
        elif found != entry:
            self._indexed(lambda i: i.refresh(found))
        return found

    def totals(self) -> tuple[int, int] | None:
        if self.reconcile_index(force=False) is None:
            return None
        result: tuple[int, int] | None = self._indexed(lambda i: i.totals())
        return result

    def entries_by_access(self) -> Iterator[EntryStat]:
        if self.entry_index() is None or self.reconcile_index(force=False) is None:
            yield from super().entries_by_access()
            return
        index = self._index
        assert index is not None
        try:
            yield from index.by_access()
        except IndexUnavailableError:
            self._index_failed()
            raise

    def clear(self) -> None:
        # The store's folder stays, empty, as joblib's does; each module folder is renamed away
        # whole, so no reader sees half of a function's entries. Files (a ``.gitignore`` when
        # the store's folder is the cache folder, the index) stay too, as in joblib.
        try:
            children = [e for e in os.scandir(self.root) if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return
        for child in children:
            self._remove_tree(child.path)
        self._ready_dirs.clear()
        self._indexed(lambda i: i.clear())


def _read_file(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def _is_prefix(name: str) -> bool:
    return len(name) == PREFIX_LENGTH


def _entry_names(prefix: str, folder: str) -> list[str]:
    """The entry folders in ``folder``: a prefix folder's, or the first layout's (``prefix=''``)."""
    names = _visible_dirs(folder)
    return names if prefix else [name for name in names if not _is_prefix(name)]


def _remove_if_stale(entry: os.DirEntry[str], current: float, older_than: float) -> None:
    try:
        age = current - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return
    pid_text = entry.name.split(STAGING_MARK, 1)[1].split("-", 1)[0]
    dead = pid_text.isdigit() and not process_alive(int(pid_text))
    if age > older_than or (dead and age > _DEAD_WRITER_GRACE_SECONDS):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _read_hits(path: str) -> tuple[int, float]:
    """An entry's hit count and last hit (0 and 0.0 without a readable ``hits`` file)."""
    try:
        status = os.stat(path)
    except OSError:
        return 0, 0.0
    if not stat.S_ISREG(status.st_mode):
        return 0, 0.0  # something else took the name: no count, and not a byte of the entry's
    return status.st_size, status.st_mtime


def _visible_dirs(path: str) -> list[str]:
    try:
        return [e.name for e in os.scandir(path) if not e.name.startswith(".") and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _rebuild_local(
    location: str, container: str, fsync: bool, verify: bool, index: bool | None = None
) -> LocalStoreBackend:
    return LocalStoreBackend(location, container=container, fsync=fsync, verify=verify, index=index)
