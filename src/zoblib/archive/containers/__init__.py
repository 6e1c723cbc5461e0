"""Containers: where an archive lives. One module per container, chosen by name or filename."""

from __future__ import annotations

import io
import os
from typing import IO

from zoblib.archive.containers.base import ByteRange, ContainerReader, ContainerWriter
from zoblib.archive.containers.directory import DirectoryReader, DirectoryWriter
from zoblib.archive.containers.hdf5 import Hdf5Reader, Hdf5Writer, is_hdf5
from zoblib.archive.containers.streams import compression_of, file_head, is_raw_file, spool
from zoblib.archive.containers.zip import ZipReader, ZipWriter
from zoblib.archive.containers.zipframing import LOCAL_SIGNATURE
from zoblib.errors import ArchiveError, ArchiveNotFoundError

__all__ = [
    "ByteRange",
    "ContainerReader",
    "ContainerWriter",
    "container_format",
    "open_reader",
    "open_writer",
]

#: Container names accepted by ``dump(..., format=...)``.
FORMATS = ("zip", "zarr", "hdf5")
_DIRECTORY_SUFFIXES = (".zarr",)
_HDF5_SUFFIXES = (".h5", ".hdf5")


def container_format(filename: str | os.PathLike[str] | IO[bytes], format: str | None) -> str:
    """The container for ``filename``: ``format`` if given, else from the name's ending."""
    if format is not None:
        if format not in FORMATS:
            raise ArchiveError(None, f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
        return format
    if isinstance(filename, (str, os.PathLike)):
        name = os.fspath(filename).rstrip("/\\").lower()
        if name.endswith(_DIRECTORY_SUFFIXES):
            return "zarr"
        if name.endswith(_HDF5_SUFFIXES):
            return "hdf5"
    return "zip"


def open_writer(target: str | IO[bytes], format: str, *, durable: bool = True) -> ContainerWriter:
    """A writer for a new archive at ``target`` in container ``format``.

    ``durable`` fsyncs the archive before publishing it under its name.
    """
    if format in ("zarr", "hdf5"):
        if not isinstance(target, str):
            raise ArchiveError(None, f"the {format} container needs a path, not a file object")
        if format == "hdf5":
            return Hdf5Writer(target, durable=durable)
        return DirectoryWriter(target, durable=durable)
    return ZipWriter(target, durable=durable)


def open_reader(source: str | IO[bytes]) -> ContainerReader:
    """A reader for the archive at ``source``, whatever its container.

    A file object that is not a real file or a ``BytesIO`` (a pipe, a socket, a
    ``gzip.GzipFile``), and a ZIP archive inside a gzip, bz2, xz or lzma stream, are read from a
    temporary copy (see :mod:`~zoblib.archive.containers.streams`).
    """
    if not isinstance(source, str):
        name = getattr(source, "name", None)
        label = name if isinstance(name, str) else "<file object>"
        if isinstance(name, str) and is_raw_file(source) and os.path.isfile(name):
            return open_reader(name)
        if isinstance(source, io.BytesIO) and compression_of(source.getbuffer()[:8].tobytes()) is None:
            return ZipReader(source, name=label)
        with spool(source) as spooled:
            return ZipReader(spooled, name=label)
    if os.path.isdir(source):
        return DirectoryReader(source)
    try:
        head = file_head(source)  # one small read tells a ZIP archive and a compressed stream
    except FileNotFoundError:
        raise ArchiveNotFoundError(source, "no such file or directory") from None
    if head.startswith(LOCAL_SIGNATURE):
        return ZipReader(source)
    if compression_of(head) is not None:
        with open(source, "rb") as compressed, spool(compressed) as spooled:
            return ZipReader(spooled, name=source)
    if is_hdf5(source):  # its signature may follow a user block
        return Hdf5Reader(source)
    return ZipReader(source)  # names what is wrong with the file
