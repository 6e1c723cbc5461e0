"""Pickling of tasks and results, with big arrays swapped for :class:`ArrayRef` on the way.

Tasks and results are pickled with cloudpickle (so lambdas, closures and functions of
``__main__`` travel) by a pickler whose ``persistent_id`` hands every numpy array to an
:class:`ArrayPassing` policy; the matching unpickler's ``persistent_load`` maps them back.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle
import numpy as np

from zoblib.parallel.arrays import ArrayRef, can_share, file_backing, open_shared, write_shared


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

    Notes
    -----
    Each array is written at most once (the policy remembers it, and keeps it alive so that
    its ``id`` is not reused): one policy lives as long as one ``Parallel`` call.
    """

    def __init__(self, folder: str | None, max_nbytes: int, mode: str) -> None:
        self.folder = folder
        self.max_nbytes = max_nbytes
        self.mode = mode
        self.written: dict[int, tuple[np.ndarray[Any, Any], ArrayRef]] = {}

    def reference_for(self, obj: object) -> ArrayRef | None:
        """Return the reference to send instead of ``obj``, or None to pickle it as usual."""
        if not isinstance(obj, np.ndarray) or not can_share(obj):
            return None
        backing = file_backing(obj)
        if backing is not None:
            return backing
        if obj.nbytes <= self.max_nbytes or self.folder is None:
            return None
        seen = self.written.get(id(obj))
        if seen is not None and seen[0] is obj:
            return seen[1]
        try:
            ref = write_shared(obj, self.folder, self.mode)
        except OSError:
            # No room left (or the call is over): the bytes go through the pipe instead.
            return None
        self.written[id(obj)] = (obj, ref)
        return ref


class _ReferencingPickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, passing: ArrayPassing) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._passing = passing

    def persistent_id(self, obj: Any) -> ArrayRef | None:
        return self._passing.reference_for(obj)


class _ReferenceUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, open_ref: Callable[[ArrayRef], Any]) -> None:
        super().__init__(file)
        self._open_ref = open_ref

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, ArrayRef):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return self._open_ref(pid)


def dumps(obj: Any, passing: ArrayPassing | None) -> bytes:
    """Pickle ``obj`` with cloudpickle, big arrays by reference when ``passing`` is given."""
    if passing is None:
        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]
    buffer = io.BytesIO()
    _ReferencingPickler(buffer, passing).dump(obj)
    return buffer.getvalue()


def loads(data: bytes, open_ref: Callable[[ArrayRef], Any]) -> Any:
    """Unpickle what :func:`dumps` made, opening each reference with ``open_ref``."""
    return _ReferenceUnpickler(io.BytesIO(data), open_ref).load()


def result_opener(call_folder: str | None) -> Callable[[ArrayRef], Any]:
    """Return how the caller opens array references found in results.

    Arrays a worker wrote into the call's folder become ordinary writable arrays: a private
    copy-on-write mapping of the file, which the end of the call unlinks (the pages live on as
    long as the array). Arrays that are memmaps of other files (the caller's own) come back as
    memmaps of those files.
    """

    def open_result(ref: ArrayRef) -> Any:
        if call_folder is not None and os.path.dirname(ref.path) == call_folder:
            return open_shared(ref, "c").view(np.ndarray)
        return open_shared(ref)

    return open_result
