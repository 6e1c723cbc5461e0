"""Choosing the container of an archive at an fsspec URL (``s3://``, ``gs://``, ``memory://``...).

``.zarr`` URLs are Zarr stores (one object per key); any other URL is one ZIP object, though a
reader also finds a Zarr store under another name by its root ``zarr.json``. HDF5
archives are refused at URLs: h5py reads a remote file object only through many small
unaligned reads, and writes need a local file; copy the file locally, or dump to ZIP or Zarr.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zoblib.archive.containers.base import ContainerReader, ContainerWriter
from zoblib.archive.containers.fsspec_directory import RemoteDirectoryReader, RemoteDirectoryWriter
from zoblib.archive.containers.fsspec_zip import TAIL_NBYTES, RemoteZipReader, RemoteZipWriter, is_zip_tail
from zoblib.archive.containers.urls import RemoteLocation, remote_errors
from zoblib.errors import ArchiveError, ArchiveNotFoundError

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _refuse_hdf5(url: str) -> ArchiveError:
    return ArchiveError(
        url,
        "HDF5 archives are not supported at URLs (h5py needs a local file): copy it to a local "
        "path first, or dump to a ZIP or .zarr URL",
    )


def open_remote_writer(
    url: str, format: str, storage_options: Mapping[str, Any] | None = None
) -> ContainerWriter:
    """A writer for a new archive at ``url`` in container ``format`` (``'zip'`` or ``'zarr'``)."""
    if format == "hdf5":
        raise _refuse_hdf5(url)
    location = RemoteLocation.open(url, storage_options)
    if format == "zarr":
        return RemoteDirectoryWriter(location)
    return RemoteZipWriter(location)


def open_remote_reader(url: str, storage_options: Mapping[str, Any] | None = None) -> ContainerReader:
    """A reader for the archive at ``url``: a Zarr store if the URL ends in ``.zarr`` or holds a
    root ``zarr.json``, else a ZIP object (its tail fetched in one request)."""
    location = RemoteLocation.open(url, storage_options)
    if location.url.lower().endswith(".zarr"):
        return _directory_reader(location)
    try:
        tail = location.fetch(location.path, -TAIL_NBYTES)
    except ArchiveNotFoundError:
        return _directory_reader(location)  # a store under a name without .zarr, or nothing
    if is_zip_tail(tail):
        return RemoteZipReader(location, tail)
    with remote_errors(location.url, "read the object's first bytes"):
        head = location.fetch(location.path, 0, len(_HDF5_SIGNATURE))
    if head == _HDF5_SIGNATURE:
        raise _refuse_hdf5(location.url)
    raise ArchiveError(location.url, "not a zoblib archive (neither a ZIP file nor a Zarr store)")


def _directory_reader(location: RemoteLocation) -> RemoteDirectoryReader:
    reader = RemoteDirectoryReader(location)
    if reader.has_root():
        return reader
    with remote_errors(location.url, "list the archive's prefix"):
        try:
            listed = location.fs.ls(location.path, detail=False)
        except FileNotFoundError:
            listed = []
    if listed:
        raise ArchiveError(
            location.url,
            "no complete archive here: objects exist but no root zarr.json (a dump was "
            "interrupted, or is being written)",
        )
    raise ArchiveNotFoundError(
        location.url, "no archive here (no such object, nor a root zarr.json under it)"
    )
