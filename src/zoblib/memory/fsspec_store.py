"""A store on any fsspec file system: ``s3://bucket/prefix``, ``memory://name``, ``gcs://...``.

Object stores have no rename, so entries are published differently from the local store: the
result is one ZIP archive uploaded as a single object (a PUT is atomic), and ``metadata.json``
is uploaded after it and marks the entry complete. A reader that finds no metadata sees no
entry. Racing writers of one call each upload a complete archive of the same result. Results
are read whole (memory maps need local files); the last access is a small ``last_access``
object, rewritten at most once a minute per entry and process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from zoblib.archive import dump, load
from zoblib.archive.containers.urls import open_filesystem
from zoblib.memory.store import (
    FUNCTION_RECORD_NAME,
    METADATA_NAME,
    EntryNotFoundError,
    EntryStat,
    EntryUnreadableError,
    StoreBackend,
)

OUTPUT_NAME = "output.pkl"
LAST_ACCESS_NAME = "last_access"
#: A process rewrites an entry's ``last_access`` object at most this often.
TOUCH_INTERVAL_SECONDS = 60.0


class FsspecStoreBackend(StoreBackend):
    """Entries on an fsspec file system, under the store's URL.

    Parameters
    ----------
    location : str
        The store's fsspec URL (``s3://bucket/prefix/zoblib``; ``Memory("s3://bucket/prefix")``
        makes that store).
    **storage_options
        Passed to the file system (``endpoint_url``, ``key``, ``anon``...).
    """

    supports_mmap: ClassVar[bool] = False

    def __init__(self, location: str, **storage_options: Any) -> None:
        self.location = location
        self.storage_options = dict(storage_options)
        # Archives at URLs open their file systems the same way (one import guard, one message).
        self.fs, path = open_filesystem(location, storage_options)
        self.root = path.rstrip("/")
        self._touched: dict[tuple[str, str], float] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_fsspec, (self.location, self.storage_options))

    def _function_dir(self, func_id: str) -> str:
        return f"{self.root}/{func_id}"

    def _entry_dir(self, func_id: str, args_id: str) -> str:
        return f"{self.root}/{func_id}/{args_id}"

    def entry_location(self, func_id: str, args_id: str) -> str:
        return f"{self.location.rstrip('/')}/{func_id}/{args_id}"

    def _cat(self, path: str) -> bytes:
        data = self.fs.cat_file(path)
        return bytes(data)

    # ---- entries ---------------------------------------------------------------------------

    def load_output(self, func_id: str, args_id: str, mmap_mode: str | None) -> Any:
        entry = self._entry_dir(func_id, args_id)
        try:
            data = self._cat(f"{entry}/{OUTPUT_NAME}")
        except FileNotFoundError as exc:
            if self.contains(func_id, args_id):
                raise EntryUnreadableError(f"{entry}: the result's archive is missing") from exc
            raise EntryNotFoundError(entry) from exc
        try:
            return load(io.BytesIO(data), safe=False)  # the cache trusts its own entries
        except Exception as exc:  # damaged archive, or unpickling failed
            raise EntryUnreadableError(f"{entry}/{OUTPUT_NAME}: {type(exc).__name__}: {exc}") from exc

    def read_metadata(self, func_id: str, args_id: str) -> dict[str, Any]:
        entry = self._entry_dir(func_id, args_id)
        try:
            document = json.loads(self._cat(f"{entry}/{METADATA_NAME}"))
        except FileNotFoundError as exc:
            raise EntryNotFoundError(entry) from exc
        except ValueError as exc:
            raise EntryUnreadableError(f"{entry}: unreadable {METADATA_NAME}: {exc}") from exc
        if not isinstance(document, dict):
            raise EntryUnreadableError(f"{entry}: {METADATA_NAME} does not hold an object")
        return document

    def contains(self, func_id: str, args_id: str) -> bool:
        try:
            self.read_metadata(func_id, args_id)
        except EntryNotFoundError:
            return False
        except EntryUnreadableError:
            return True
        return True

    def touch(self, func_id: str, args_id: str) -> None:
        current = time.time()
        if current - self._touched.get((func_id, args_id), 0.0) < TOUCH_INTERVAL_SECONDS:
            return
        self._touched[(func_id, args_id)] = current
        with contextlib.suppress(Exception):
            self.fs.pipe_file(
                f"{self._entry_dir(func_id, args_id)}/{LAST_ACCESS_NAME}", repr(current).encode()
            )

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
        del replace  # every upload is a complete entry; the last one stays
        entry = self._entry_dir(func_id, args_id)
        # Dumped to a local file first so that a big result is streamed, not held in memory.
        with tempfile.TemporaryDirectory(prefix="zoblib-upload-") as scratch:
            local = os.path.join(scratch, OUTPUT_NAME)
            dump(output, local, compress=compress, fsync=False)
            stored = dict(metadata)
            stored["size"] = os.path.getsize(local)
            stored["container"] = "zip"
            self.fs.put_file(local, f"{entry}/{OUTPUT_NAME}")
        current = time.time()
        self.fs.pipe_file(f"{entry}/{LAST_ACCESS_NAME}", repr(current).encode())
        self._touched[(func_id, args_id)] = current
        self.fs.pipe_file(f"{entry}/{METADATA_NAME}", json.dumps(stored).encode())
        return stored

    def remove_entry(self, func_id: str, args_id: str) -> None:
        entry = self._entry_dir(func_id, args_id)
        # The metadata goes first: from then on readers see no entry.
        for name in (METADATA_NAME, OUTPUT_NAME, LAST_ACCESS_NAME):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(f"{entry}/{name}")
        with contextlib.suppress(FileNotFoundError, OSError):
            if self.fs.exists(entry):
                self.fs.rm(entry, recursive=True)
        self._touched.pop((func_id, args_id), None)

    # ---- functions -------------------------------------------------------------------------

    def read_function_record(self, func_id: str) -> dict[str, Any] | None:
        try:
            document = json.loads(self._cat(f"{self._function_dir(func_id)}/{FUNCTION_RECORD_NAME}"))
        except (FileNotFoundError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def write_function_record(self, func_id: str, record: Mapping[str, Any]) -> None:
        self.fs.pipe_file(
            f"{self._function_dir(func_id)}/{FUNCTION_RECORD_NAME}", json.dumps(record).encode()
        )

    def remove_function(self, func_id: str) -> None:
        for stat in self.list_entries(func_id):
            self.remove_entry(func_id, stat.args_id)
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.rm(self._function_dir(func_id), recursive=True)

    # ---- the whole store -------------------------------------------------------------------

    def _children(self, path: str) -> list[str]:
        self.fs.invalidate_cache(path)
        try:
            listing = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
        return sorted(
            item["name"].rstrip("/").rsplit("/", 1)[-1] for item in listing if item.get("type") == "directory"
        )

    def list_functions(self) -> list[str]:
        return [
            f"{module}/{name}"
            for module in self._children(self.root)
            for name in self._children(f"{self.root}/{module}")
        ]

    def list_entries(self, func_id: str) -> list[EntryStat]:
        entries = []
        for args_id in self._children(self._function_dir(func_id)):
            entry = self._entry_dir(func_id, args_id)
            try:
                metadata = self.read_metadata(func_id, args_id)
            except EntryNotFoundError:
                continue  # being written or removed
            except EntryUnreadableError:
                metadata = {}
            try:
                last_access = float(self._cat(f"{entry}/{LAST_ACCESS_NAME}"))
            except (FileNotFoundError, ValueError):
                last_access = float(metadata.get("time", 0.0))
            size = metadata.get("size")
            entries.append(
                EntryStat(func_id, args_id, int(size) if isinstance(size, int) else 0, last_access)
            )
        return entries

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.rm(self.root, recursive=True)
        self._touched.clear()


def _rebuild_fsspec(location: str, storage_options: dict[str, Any]) -> FsspecStoreBackend:
    return FsspecStoreBackend(location, **storage_options)
