"""The local store: entries as folders on a file system, published by renaming.

Layout under the store's folder (``<cache folder>/zoblib/`` for ``Memory("<cache folder>")``)::

    <module>/<qualified name>/          one folder per function
        func_code.json                  the code record (digest and source)
        <args id>/                      one folder per cached call
            output.zarr or output.pkl   the result: a zoblib archive (directory or ZIP file)
            metadata.json               duration, input summary, time, size; its mtime is
                                        when the entry was written
            hits                        one byte per hit (its size is the count; absent until
                                        the first hit); its mtime is the last hit

An entry is written whole in a hidden staging folder beside its final name, then renamed into
place, so a reader finds either no entry or a complete one; ``zoblib.load`` opens the archive
directly. The first write also leaves a ``.gitignore`` in the cache folder (joblib 1.6 does).

A hit appends one byte to ``hits`` (``O_APPEND``): each such ``write`` is atomic, so processes
hitting one entry at once lose no count and take no lock. The entry's last access is the later
of the two mtimes. A recomputed entry is a new folder, without ``hits``: its count restarts at 0.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
import time
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

from zoblib._processes import process_alive
from zoblib.archive import dump, load
from zoblib.errors import ArchiveError, ArchiveNotFoundError, CacheWarning
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
STAGING_MARK = ".zoblib-tmp-"
#: The per-entry file a hit appends one byte to.
HITS_NAME = "hits"
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


class LocalStoreBackend(StoreBackend):
    """Entries as folders under ``location`` on a local (or network) file system.

    Parameters
    ----------
    location
        The store's folder (created on first write): ``Memory("cache")`` makes a store at
        ``cache/zoblib``, and a ``MemorizedResult`` rebuilt from ``store_backend.location``
        finds the same entries.
    container : {'zarr', 'zip'}, default 'zarr'
        The archive container of each result: a Zarr directory (``output.zarr``) or one ZIP
        file (``output.pkl``). Both memory-map; the directory is faster to write and read here.
    fsync : bool, default False
        Flush each entry to disk before publishing it. Off by default, as in joblib: a cache
        can be recomputed, and an entry damaged by a power cut fails its checksums and is
        recomputed (memory-mapped arrays only with ``verify``).
    verify : bool, default False
        With ``mmap_mode``, check memory-mapped results against their checksums on every hit
        (``load(..., verify=True)``: one read of the result's data); a damaged entry is then
        recomputed like any other. Without it a hit costs no read of the data.
    """

    supports_mmap: ClassVar[bool] = True

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        container: str = "zarr",
        fsync: bool = False,
        verify: bool = False,
    ):
        if container not in OUTPUT_NAMES:
            raise ValueError(f"container must be one of {sorted(OUTPUT_NAMES)}, got {container!r}")
        self.location = os.fspath(location)
        self.root = os.path.abspath(self.location)
        self.container = container
        self.fsync = fsync
        self.verify = verify
        self._output_name = OUTPUT_NAMES[container]
        self._function_dirs: dict[str, str] = {}
        self._folder_ready = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_local, (self.location, self.container, self.fsync, self.verify))

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

    # ---- paths -----------------------------------------------------------------------------

    def _function_dir(self, func_id: str) -> str:
        # Cached: building paths is a good part of a cache hit's few microseconds.
        path = self._function_dirs.get(func_id)
        if path is None:
            path = self._function_dirs[func_id] = os.path.join(self.root, *func_id.split("/"))
        return path

    def _entry_dir(self, func_id: str, args_id: str) -> str:
        return f"{self._function_dir(func_id)}{os.sep}{args_id}"

    def entry_location(self, func_id: str, args_id: str) -> str:
        return self._entry_dir(func_id, args_id)

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
        entry = self._entry_dir(func_id, args_id)
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
        return os.path.exists(os.path.join(self._entry_dir(func_id, args_id), METADATA_NAME))

    def touch(self, func_id: str, args_id: str) -> None:
        # One byte appended: O_APPEND makes the seek and the write one atomic step, so
        # concurrent hits each add their byte (no lock, no read-modify-write), and the write
        # sets the file's mtime, the last access (atime, which many file systems do not keep,
        # is not relied on). An entry renamed away meanwhile has no folder at this path, so
        # O_CREAT cannot make a stray one. Failures (a read-only cache) are silent: the hit
        # still loads, uncounted.
        try:
            descriptor = os.open(
                f"{self._entry_dir(func_id, args_id)}{os.sep}{HITS_NAME}", _HITS_FLAGS, 0o666
            )
        except OSError:
            return
        try:
            os.write(descriptor, b"\x01")
        except OSError:
            pass
        finally:
            os.close(descriptor)

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
        function_dir = self._function_dir(func_id)
        self._prepare_folder()
        os.makedirs(function_dir, exist_ok=True)
        staging = self._staging_name(function_dir, args_id)
        os.mkdir(staging)
        try:
            dump(
                output,
                os.path.join(staging, OUTPUT_NAMES[self.container]),
                compress=compress,
                fsync=self.fsync,
            )
            stored = dict(metadata)
            stored["size"] = _tree_size(staging)
            stored["container"] = self.container
            # metadata.json is written last: an entry folder without it is incomplete.
            with open(os.path.join(staging, METADATA_NAME), "w", encoding="utf-8") as file:
                json.dump(stored, file)
            stored["size"] += os.path.getsize(os.path.join(staging, METADATA_NAME))
            self._publish(staging, os.path.join(function_dir, args_id), replace=replace)
        finally:
            if os.path.lexists(staging):
                shutil.rmtree(staging, ignore_errors=True)
        return stored

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
        try:
            candidates = [e for e in os.scandir(function_dir) if STAGING_MARK in e.name]
        except OSError:
            return
        current = time.time()
        for entry in candidates:
            try:
                age = current - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            pid_text = entry.name.split(STAGING_MARK, 1)[1].split("-", 1)[0]
            dead = pid_text.isdigit() and not process_alive(int(pid_text))
            if age > older_than or (dead and age > _DEAD_WRITER_GRACE_SECONDS):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

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

    # ---- the whole store -------------------------------------------------------------------

    def list_functions(self) -> list[str]:
        functions: list[str] = []
        for module in _visible_dirs(self.root):
            functions.extend(f"{module}/{name}" for name in _visible_dirs(os.path.join(self.root, module)))
        return sorted(functions)

    def list_entries(self, func_id: str) -> list[EntryStat]:
        function_dir = self._function_dir(func_id)
        entries = []
        for args_id in _visible_dirs(function_dir):
            entry = os.path.join(function_dir, args_id)
            metadata_path = os.path.join(entry, METADATA_NAME)
            hits, last_hit = _read_hits(os.path.join(entry, HITS_NAME))
            try:
                last_access = os.stat(metadata_path).st_mtime
                with open(metadata_path, "rb") as file:
                    size = int(json.load(file)["size"]) + hits
            except (OSError, ValueError, KeyError, TypeError):
                # A damaged entry still takes room: count it, so eviction can reclaim it.
                try:
                    last_access = os.stat(entry).st_mtime
                except OSError:
                    continue  # removed meanwhile
                size = _tree_size(entry)
            entries.append(EntryStat(func_id, args_id, size, max(last_access, last_hit), hits=hits))
        return entries

    def clear(self) -> None:
        # The store's folder stays, empty, as joblib's does; each module folder is renamed away
        # whole, so no reader sees half of a function's entries. Files (a ``.gitignore`` when
        # the store's folder is the cache folder) stay too, as in joblib.
        try:
            children = [e for e in os.scandir(self.root) if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return
        for child in children:
            self._remove_tree(child.path)


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


def _rebuild_local(location: str, container: str, fsync: bool, verify: bool) -> LocalStoreBackend:
    return LocalStoreBackend(location, container=container, fsync=fsync, verify=verify)
