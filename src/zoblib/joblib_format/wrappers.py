"""Stand-ins for the wrapper objects joblib pickles in place of each numpy array.

A joblib file's pickle names joblib's own classes (``joblib.numpy_pickle.NumpyArrayWrapper``
and, before joblib 0.10, ``NDArrayWrapper`` and ``ZNDArrayWrapper``). They carry data only (a
dtype, a shape, a side file's name), so the unpickler maps those names to the plain classes
here, which joblib need not be installed for and whose unpickling runs no code of joblib's:
``BUILD`` stores the state, and :class:`~zoblib.joblib_format.unpickler.JoblibUnpickler` then
reads the array the state describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class _Wrapper:
    """A stand-in whose state is the dict joblib pickled; unknown keys are ignored."""

    _FIELDS: tuple[str, ...] = ()
    #: Whether a padding length byte precedes the array's bytes (joblib >= 1.2).
    has_padding: bool = False

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) from some protocols
            state = state[0]
        if not isinstance(state, dict):
            raise ValueError(f"the state of a joblib {type(self).__name__} is not a dict: {state!r:.80}")
        for field in self._FIELDS:
            setattr(self, field, state.get(field))
        # joblib < 1.2 wrote no padding before the array bytes and no such key.
        self.has_padding = state.get("numpy_array_alignment_bytes") is not None


class NumpyArrayWrapper(_Wrapper):
    """joblib >= 0.10: the array's bytes follow this object's ``BUILD`` in the stream.

    ``subclass``, ``shape``, ``order`` (``'C'`` or ``'F'``), ``dtype``, ``allow_mmap``; in
    joblib >= 1.2 one byte giving a padding length, then that many padding bytes, align the
    data to 16 bytes in the file. An object array is a nested pickle instead of raw bytes.
    """

    _FIELDS = ("subclass", "shape", "order", "dtype", "allow_mmap")
    subclass: Any
    shape: Any
    order: Any
    dtype: Any
    allow_mmap: Any


class NDArrayWrapper(_Wrapper):
    """joblib < 0.10, uncompressed: the array is a ``.npy`` file beside the pickle (``filename``)."""

    _FIELDS = ("filename", "subclass", "allow_mmap")
    filename: Any
    subclass: Any
    allow_mmap: Any


class ZNDArrayWrapper(_Wrapper):
    """joblib < 0.10, compressed: the array's raw bytes are a zlib "ZF" file beside the pickle.

    ``init_args`` (``subclass``, ``shape``, ``dtype`` code) and ``state`` (numpy's
    ``__setstate__`` tuple without its data) rebuild the array around those bytes.
    """

    _FIELDS = ("filename", "init_args", "state")
    filename: Any
    init_args: Any
    state: Any


WRAPPERS: tuple[type[_Wrapper], ...] = (NumpyArrayWrapper, NDArrayWrapper, ZNDArrayWrapper)

#: The modules joblib's wrappers were pickled from: joblib's own, and the copy scikit-learn
#: shipped as ``sklearn.externals.joblib`` until 0.23 (models saved with it name that module).
_JOBLIB_MODULES = ("joblib", "sklearn.externals.joblib")

#: ``(module, name)`` as a pickle names a joblib wrapper -> its stand-in.
STAND_INS: Mapping[tuple[str, str], type[_Wrapper]] = {
    (f"{package}.{module}", wrapper.__name__): wrapper
    for package in _JOBLIB_MODULES
    for module in ("numpy_pickle", "numpy_pickle_compat")
    for wrapper in WRAPPERS
}
