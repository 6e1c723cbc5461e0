"""The directory container: a Zarr v3 directory store (names ending in ``.zarr``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from typing import ClassVar

from zoblib.archive.containers.base import ByteRange, read_exactly
from zoblib.archive.containers.staging import (
    clean_leftovers,
    fsync_directory,
    preallocate,
    replace_directory,
    staging_path,
    start_writeback,
)
from zoblib.archive.containers.zarr_store import ZarrStoreReader, ZarrStoreWriter

_WRITEBACK_MIN_NBYTES = 8 << 20


class DirectoryWriter(ZarrStoreWriter):
    """Writes the store into a staging directory beside the target, then renames it."""

    format_name: ClassVar[str] = "zarr"

    def __init__(self, path: str, *, durable: bool = True) -> None:
        self.path = os.path.abspath(path)
        self.durable = durable
        clean_leftovers(self.path)
        self.staging = staging_path(self.path)
        os.mkdir(self.staging)
        self._made_dirs: set[str] = {self.staging}
        self._writeback_from = 0  # start of the bytes of the current file not yet sent to disk

    def _put(self, key: str, pieces: Iterable[memoryview], nbytes: int, *, align: bool) -> None:
        target = os.path.join(self.staging, key)
        parent = os.path.dirname(target)
        if parent not in self._made_dirs:
            os.makedirs(parent, exist_ok=True)
            self._made_dirs.add(parent)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            preallocate(fd, 0, nbytes)
            position = 0
            for piece in pieces:
                view = piece
                while len(view):
                    view = view[os.write(fd, view) :]
                position += len(piece)
                if self.durable and position - self._writeback_from >= _WRITEBACK_MIN_NBYTES:
                    start_writeback(fd, self._writeback_from, position - self._writeback_from)
                    self._writeback_from = position
            if self.durable:
                os.fsync(fd)
        finally:
            self._writeback_from = 0
            os.close(fd)

    def commit(self) -> list[str]:
        if self.durable:
            # Deepest first, so every new entry is durable before the rename publishes it.
            for directory in sorted(self._made_dirs, key=len, reverse=True):
                fsync_directory(directory)
        replace_directory(self.staging, self.path, durable=self.durable)
        return [self.path]

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class DirectoryReader(ZarrStoreReader):
    """Reads a Zarr v3 directory store; every chunk is its own file, so all can be memmapped."""

    format_name: ClassVar[str] = "zarr"
    supports_memmap: ClassVar[bool] = True

    def _locate(self, key: str) -> ByteRange | None:
        file_path = os.path.join(self.path, *key.split("/"))
        try:
            return ByteRange(file_path, 0, os.stat(file_path).st_size)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _read_range(self, where: ByteRange, out: memoryview, offset: int) -> None:
        fd = os.open(where.path, os.O_RDONLY)
        try:
            read_exactly(fd, out, where.offset + offset, where.path)
        finally:
            os.close(fd)
