"""Pickling of tasks and results, with big arrays swapped for :class:`ArrayRef` on the way.

Tasks and results are pickled with cloudpickle (so lambdas, closures and functions of
``__main__`` travel). Its ``reducer_override`` hook is extended so that every numpy array is
shown to an :class:`ArrayPassing` policy, which may replace it by a reference that the receiver
opens with :func:`open_argument` (in a worker) or :func:`open_result` (in the caller).

Why ``reducer_override`` and not ``persistent_id``: the pickler calls ``persistent_id`` for
every object, ints and strings included, and that Python call made pickling 10,000 tiny tasks
four times slower; ``reducer_override`` is only called for non-atomic objects, and cloudpickle
calls its own for them anyway, so the check costs nothing measurable.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import cloudpickle
import numpy as np

from zoblib.errors import ZoblibError
from zoblib.parallel.arrays import ArrayRef, can_share, file_backing, open_shared, write_shared
from zoblib.parallel.shared_objects import shared_object
from zoblib.parallel.store import ArrayStore, StoredArray, open_stored


def open_argument(ref: ArrayRef) -> np.ndarray[Any, Any]:
    """Open an array argument in a worker: a memmap with the mode the caller chose."""
    return open_shared(ref)


def open_result(ref: ArrayRef, temporary: bool, as_memmap: bool = False) -> np.ndarray[Any, Any]:
    """Open an array result in the caller.

    Arrays the worker wrote into the call's folder (``temporary``) become ordinary writable
    arrays: a private copy-on-write mapping of the file, which the end of the call unlinks (the
    pages live on as long as the array). Memmaps of other files (the caller's own) come back
    as memmaps of those files. With ``as_memmap`` the caller's own copy-on-write maps come
    back as the ``np.memmap`` objects they are.
    """
    if temporary:
        mapped: np.ndarray[Any, Any] = open_shared(ref, "c")
        return mapped if as_memmap else mapped.view(np.ndarray)
    return open_shared(ref)


class ArrayPassing:
    """Decide, array by array, what goes into a pickle: the bytes or a reference.

    Parameters
    ----------
    folder
        Where new files are written; None sends only arrays that already are memmaps of a
        file by reference.
    max_nbytes
        Arrays larger than this many bytes are written to ``folder``.
    mode
        The ``np.memmap`` mode receivers open written arrays with.
    for_results
        Whether this pickles results (opened by :func:`open_result` in the caller) rather
        than arguments (opened by :func:`open_argument` in a worker).
    memmap_results
        Whether results opened in the caller stay ``np.memmap`` objects.
    store
        A content-named store (``parallel_config(store=...)``) that takes every big array in
        place of ``folder``, memmaps of the caller's files included: the workers may not read
        those files.

    Notes
    -----
    Each array is written at most once (the policy remembers it, and keeps it alive so that
    its ``id`` is not reused): one policy lives as long as one ``Parallel`` call.
    """

    def __init__(
        self,
        folder: str | None,
        max_nbytes: int,
        mode: str,
        *,
        for_results: bool = False,
        memmap_results: bool = False,
        store: ArrayStore | None = None,
    ) -> None:
        self.folder = folder
        self.store = store
        self.memmap_results = memmap_results
        self.max_nbytes = max_nbytes
        self.mode = mode
        self.for_results = for_results
        self.written: dict[int, tuple[np.ndarray[Any, Any], ArrayRef | StoredArray]] = {}

    def reference_for(self, array: np.ndarray[Any, Any]) -> ArrayRef | StoredArray | None:
        """Return the reference to send instead of ``array``, or None to pickle it as usual."""
        if not can_share(array):
            return None
        if self.store is None:
            backing = file_backing(array)
            if backing is not None:
                return backing
        if array.nbytes <= self.max_nbytes or (self.folder is None and self.store is None):
            return None
        seen = self.written.get(id(array))
        if seen is not None and seen[0] is array:
            return seen[1]
        ref: ArrayRef | StoredArray
        if self.store is not None:
            # A store that fails (no credentials, no bucket) is an error to see, not a reason
            # to send gigabytes through the engine instead.
            ref = self.store.put(array, self.mode)
        else:
            try:
                ref = write_shared(array, self.folder or "", self.mode)
            except (OSError, ZoblibError):
                # No room left, or the call is over: the bytes go through the pipe instead.
                return None
        self.written[id(array)] = (array, ref)
        return ref

    def reduce(self, array: np.ndarray[Any, Any]) -> tuple[Callable[..., Any], tuple[Any, ...]] | None:
        """Return the pickle reduction of ``array`` as a reference, or None to pickle it whole."""
        ref = self.reference_for(array)
        if ref is None:
            return None
        if isinstance(ref, StoredArray):
            return open_stored, (ref, self.for_results, self.memmap_results)
        if not self.for_results:
            return open_argument, (ref,)
        temporary = self.folder is not None and ref.path.startswith(self.folder + os.sep)
        return open_result, (ref, temporary, self.memmap_results)


class _ReferencingPickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, passing: ArrayPassing | None, shared: Mapping[int, int]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._passing = passing
        self._shared = shared

    def reducer_override(self, obj: Any) -> Any:
        if self._shared:
            position = self._shared.get(id(obj))
            if position is not None:
                return shared_object, (position,)
        if self._passing is not None and isinstance(obj, np.ndarray):
            reduction = self._passing.reduce(obj)
            if reduction is not None:
                return reduction
        return super().reducer_override(obj)


def dumps(obj: Any, passing: ArrayPassing | None, shared: Mapping[int, int] | None = None) -> bytes:
    """Pickle ``obj`` with cloudpickle, big arrays by reference when ``passing`` is given.

    ``shared`` maps the ``id`` of objects the engine already holds in its workers (dask's
    ``scatter=``) to their position: those are pickled as that position only (see
    :mod:`~zoblib.parallel.shared_objects`).
    """
    if passing is None and not shared:
        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]
    buffer = io.BytesIO()
    _ReferencingPickler(buffer, passing, shared or {}).dump(obj)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    """Unpickle what :func:`dumps` made (references are opened as they are met)."""
    return pickle.loads(data)
