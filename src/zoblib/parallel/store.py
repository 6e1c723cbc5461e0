"""A store of arrays named by their content: big arrays by reference for workers on any machine.

``parallel_config(store="s3://bucket/prefix" or "/shared/dir", storage_options={...})`` sends
every numpy argument and result above ``max_nbytes`` through this store instead of the call's
temporary folder. Each array is an uncompressed zoblib ZIP archive at
``<store>/zoblib-arrays/<name>.zip``, where ``<name>`` digests its values, dtype, shape and
memory order (:func:`content_name`). So an argument passed again, in the same call or a later
one, from this process or another, is written once: the writer checks whether the name exists
first. Two writers racing on one name are harmless: both write the same bytes, and each
publication is atomic (a rename on a file system, a single PUT on an object store), so a reader
sees a complete archive or none.

Readers get plain numpy data. In a local (or mounted) folder the archive is memory-mapped; at a
URL it is read whole, once per worker process, into a bounded cache (:data:`CACHE_NBYTES`) that
later batches of the same worker reuse; a name never changes content, so the cache is never
stale. A task therefore does numpy math at memory speed, not through a lazy array that would
fetch the data again for every operation.

Objects in a store persist after the call, by design (that is what makes a repeated argument
free): :func:`clear_store` removes them, as does deleting the ``zoblib-arrays`` folder or prefix.
"""

from __future__ import annotations

import collections
import hashlib
import os
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoblib.archive.api import dump, load
from zoblib.archive.containers.urls import is_url, local_path, open_filesystem, remote_errors
from zoblib.hashing.algorithms import DEFAULT_HASH_NAME
from zoblib.hashing.arrays import array_digest, dtype_token, recorded_digest
from zoblib.parallel.arrays import memmap_mode

#: The folder (or prefix) of a store that holds the arrays; nothing else is written there.
ARRAYS_FOLDER = "zoblib-arrays"
#: Bytes of arrays read from URLs that a worker process keeps for its later batches.
CACHE_NBYTES = 2 * 1024**3


@dataclass(frozen=True)
class ArrayStore:
    """Where content-named arrays live: a local (or mounted) folder, or an fsspec URL.

    Parameters
    ----------
    location
        A folder every worker reads (``"/shared/dir"``) or a URL (``"s3://bucket/prefix"``).
    storage_options
        Options of the URL's fsspec file system (``endpoint_url``, ``key``...).

    Raises
    ------
    ValueError
        If ``storage_options`` are given for a local folder.
    """

    location: str
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        location = os.fspath(self.location)
        location = location.rstrip("/") if is_url(location) else os.path.abspath(local_path(location))
        object.__setattr__(self, "location", location)
        object.__setattr__(self, "storage_options", dict(self.storage_options or {}))
        if self.storage_options and not self.remote:
            raise ValueError(f"storage_options= only applies to a store at a URL, not {self.location!r}")

    @property
    def remote(self) -> bool:
        """Whether the store is at a URL (arrays are read whole) rather than in a folder (mapped)."""
        return is_url(self.location)

    @property
    def arrays(self) -> str:
        """The folder or URL prefix holding the arrays."""
        return (
            f"{self.location}/{ARRAYS_FOLDER}" if self.remote else os.path.join(self.location, ARRAYS_FOLDER)
        )

    def target(self, name: str) -> str:
        """The path or URL of the archive named ``name``."""
        return f"{self.arrays}/{name}" if self.remote else os.path.join(self.arrays, name)

    def put(self, array: np.ndarray[Any, Any], mode: str = "r") -> StoredArray:
        """Store ``array`` under its content name unless it is there already; return its reference.

        Parameters
        ----------
        array
            A numpy array without Python objects inside.
        mode
            How readers open it: ``'r'`` read-only, ``'c'`` (or ``'r+'``, ``'w+'``) a private
            writable copy; a stored array is never written through, its name is its content.

        Raises
        ------
        ArchiveError
            If the store cannot be written (a :class:`~zoblib.RemoteArchiveError` naming the
            URL for an object store).
        OSError
            If a local folder cannot be written.
        """
        name = content_name(array)
        target = self.target(name)
        if not self.exists(target):
            if not self.remote:
                os.makedirs(self.arrays, exist_ok=True)
            dump(
                array,
                target,
                compress=0,
                inline_threshold=0,
                format="zip",
                storage_options=self.storage_options or None,
            )
        readers_mode = "r" if memmap_mode(mode) == "r" else "c"
        return StoredArray(target, self.storage_options, readers_mode)

    def exists(self, target: str) -> bool:
        """Tell whether the archive at ``target`` (a path or URL of this store) was published."""
        if not self.remote:
            return os.path.exists(target)
        with remote_errors(target, "look for the array"):
            fs, path = open_filesystem(target, self.storage_options)
            return bool(fs.exists(path))


@dataclass(frozen=True)
class StoredArray:
    """The reference a task or result carries instead of an array kept in an :class:`ArrayStore`."""

    target: str
    storage_options: Mapping[str, Any]
    mode: str

    @property
    def remote(self) -> bool:
        """Whether the archive is at a URL."""
        return is_url(self.target)


def content_name(array: np.ndarray[Any, Any]) -> str:
    """Name an array by its values, dtype, shape and memory order (``<32 hex digits>.zip``).

    Examples
    --------
    >>> a = np.arange(10.0)
    >>> content_name(a) == content_name(a.copy()), content_name(a) == content_name(a + 1)
    (True, False)
    """
    digest = recorded_digest(array, DEFAULT_HASH_NAME) or array_digest(array)
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    key = f"{digest}|{dtype_token(array.dtype)!r}|{tuple(array.shape)}|{order}"
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".zip"


def open_stored(ref: StoredArray, for_results: bool = False, as_memmap: bool = False) -> np.ndarray[Any, Any]:
    """Open a stored array in a worker (an argument) or in the caller (``for_results``).

    A local archive is memory-mapped (read-only, or copy-on-write for ``mode='c'`` and for
    results, which the caller gets writable, as ``np.memmap`` with ``as_memmap``). An archive
    at a URL is read whole: arguments through the worker's cache (read-only for ``'r'``, else a
    private copy), results into a new writable array of the caller.
    """
    if not ref.remote:
        mode = "c" if for_results else ref.mode
        mapped: np.ndarray[Any, Any] = load(ref.target, mmap_mode=mode)
        return mapped if as_memmap or not for_results else mapped.view(np.ndarray)
    if for_results:
        return _read_remote(ref)
    cached = _worker_cache.get(ref)
    return cached if ref.mode == "r" else cached.copy()


def _read_remote(ref: StoredArray) -> np.ndarray[Any, Any]:
    loaded: np.ndarray[Any, Any] = load(ref.target, storage_options=ref.storage_options or None)
    return loaded


class _ReadCache:
    """The arrays a worker process read from URLs, most recent last, within a byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._arrays: collections.OrderedDict[str, np.ndarray[Any, Any]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, ref: StoredArray) -> np.ndarray[Any, Any]:
        with self._lock:
            found = self._arrays.get(ref.target)
            if found is not None:
                self._arrays.move_to_end(ref.target)
                return found
        array = _read_remote(ref)
        array.flags.writeable = False  # shared by every task of this process that reads it
        with self._lock:
            self._arrays[ref.target] = array
            total = sum(kept.nbytes for kept in self._arrays.values())
            # The newest array stays even over budget: the running batch needs it.
            while total > self.budget and len(self._arrays) > 1:
                _, dropped = self._arrays.popitem(last=False)
                total -= dropped.nbytes
        return array

    def clear(self) -> None:
        with self._lock:
            self._arrays.clear()


_worker_cache = _ReadCache(CACHE_NBYTES)


def clear_store(location: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None) -> int:
    """Delete every array a ``Parallel`` call kept in the store at ``location``.

    Only the store's ``zoblib-arrays`` folder (or prefix) is touched. Calls running at the same
    time may find their arrays gone: clear a store between calls.

    Parameters
    ----------
    location
        The ``store=`` given to ``parallel_config``.
    storage_options
        For a URL: options of its fsspec file system.

    Returns
    -------
    int
        How many arrays were deleted.

    Examples
    --------
    >>> import tempfile
    >>> store = ArrayStore(tempfile.mkdtemp())
    >>> _ = store.put(np.zeros(1000))
    >>> clear_store(store.location)
    1
    """
    store = ArrayStore(os.fspath(location), storage_options or {})
    _worker_cache.clear()
    if not store.remote:
        try:
            count = sum(1 for entry in os.scandir(store.arrays) if entry.name.endswith(".zip"))
        except FileNotFoundError:
            return 0
        shutil.rmtree(store.arrays, ignore_errors=True)
        return count
    with remote_errors(store.arrays, "clear the store"):
        fs, path = open_filesystem(store.arrays, store.storage_options)
        try:
            names = fs.ls(path, detail=False, refresh=True)
        except FileNotFoundError:
            return 0
        if names:
            fs.rm(names)
        return len(names)
