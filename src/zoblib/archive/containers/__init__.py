"""Containers: where an archive lives. One module per container, chosen by name or filename."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import IO, Any

from zoblib.archive.containers.base import ByteRange, ContainerReader, ContainerWriter
from zoblib.archive.containers.directory import DirectoryReader, DirectoryWriter
from zoblib.archive.containers.hdf5 import Hdf5Reader, Hdf5Writer, is_hdf5
from zoblib.archive.containers.remote import open_remote_reader, open_remote_writer
from zoblib.archive.containers.streams import compression_of, file_head, is_raw_file, spool
from zoblib.archive.containers.urls import is_url, local_path
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


def open_writer(
    target: str | IO[bytes],
    format: str,
    *,
    durable: bool = True,
    storage_options: Mapping[str, Any] | None = None,
) -> ContainerWriter:
    """A writer for a new archive at ``target`` in container ``format``.

    ``durable`` fsyncs the archive before publishing it under its name. ``target`` may be an
    fsspec URL (``storage_options`` for its file system; ``file://`` is a local path).
    """
    if is_url(target):
        return open_remote_writer(target, format, storage_options)
    if isinstance(target, str):
        target = local_path(target)
    if format in ("zarr", "hdf5"):
        if not isinstance(target, str):
            raise ArchiveError(None, f"the {format} container needs a path, not a file object")
        if format == "hdf5":
            return Hdf5Writer(target, durable=durable)
        return DirectoryWriter(target, durable=durable)
    return ZipWriter(target, durable=durable)


def open_reader(source: str | IO[bytes], storage_options: Mapping[str, Any] | None = None) -> ContainerReader:
    """A reader for the archive at ``source``, whatever its container.

    A file object that is not a real file or a ``BytesIO`` (a pipe, a socket, a
    ``gzip.GzipFile``), and a ZIP archive inside a gzip, bz2, xz, lzma, zlib or lz4 stream, are
    read from a temporary copy (see :mod:`~zoblib.archive.containers.streams`). joblib's own
    files never reach here: ``load`` tells them apart first (:mod:`zoblib.joblib_format`).
    An fsspec URL is read remotely (:mod:`~zoblib.archive.containers.remote`), with
    ``storage_options`` for its file system.
    """
    if is_url(source):
        return open_remote_reader(source, storage_options)
    if isinstance(source, str):
        source = local_path(source)
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
