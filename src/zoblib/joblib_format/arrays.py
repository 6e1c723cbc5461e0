"""The arrays of a joblib >= 0.10 file: raw bytes that follow their wrapper in the stream.

Each array's bytes are read straight into a new array (one copy, a piece at a time from a
decompressing stream), or mapped with ``np.memmap`` where they lie in an uncompressed file, as
joblib does. An object array is a nested pickle, read by the caller's unpickler class.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np

from zoblib.archive.guard import check_allocation
from zoblib.errors import ArchiveCorruptedError, ZoblibWarning
from zoblib.joblib_format.wrappers import NumpyArrayWrapper

#: Where joblib >= 1.2 aligns array data in its files.
ALIGNMENT_NBYTES = 16
_OPPOSITE_BYTE_ORDER = ">" if sys.byteorder == "little" else "<"


@dataclass
class JoblibReading:
    """One joblib file being read: what every array read needs to know.

    ``path`` is set when the file is read from disk uncompressed (its arrays can be mapped;
    joblib < 0.10's side files sit in its folder), ``mmap_mode`` only then.
    """

    name: str
    path: str | None
    mmap_mode: str | None
    native_byte_order: bool
    #: Set when a joblib < 0.10 format was met (joblib warns that the file is deprecated).
    legacy: bool = False


@dataclass(frozen=True)
class _Layout:
    """An array's dtype, shape and memory order, as its wrapper gave them (checked)."""

    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    order: Literal["C", "F"]

    @classmethod
    def of(cls, wrapper: NumpyArrayWrapper, name: str) -> _Layout:
        dtype, shape, order = wrapper.dtype, wrapper.shape, wrapper.order
        if not isinstance(dtype, np.dtype):
            raise ArchiveCorruptedError(name, f"an array's dtype is not a numpy dtype: {dtype!r:.80}")
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ArchiveCorruptedError(name, f"an array's shape is not a tuple of sizes: {shape!r:.80}")
        if order not in ("C", "F"):
            raise ArchiveCorruptedError(name, f"an array's order is neither 'C' nor 'F': {order!r:.80}")
        return cls(dtype, shape, order)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def read_streamed_array(
    wrapper: NumpyArrayWrapper,
    file: IO[bytes],
    reading: JoblibReading,
    load_nested: Callable[[IO[bytes]], Any],
) -> Any:
    """The array ``wrapper`` describes, read from ``file`` where its bytes start.

    ``load_nested`` unpickles an object array's nested pickle from ``file``.
    """
    layout = _Layout.of(wrapper, reading.name)
    if layout.dtype.hasobject:
        array = load_nested(file)
        if not isinstance(array, np.ndarray):
            raise ArchiveCorruptedError(
                reading.name, f"an object array's nested pickle holds a {type(array).__name__}"
            )
    elif reading.mmap_mode is not None and reading.path is not None and wrapper.allow_mmap:
        array = _mapped(layout, wrapper.has_padding, file, reading)
    else:
        array = _read(layout, wrapper.has_padding, file, reading.name)
    if reading.native_byte_order:
        array = native_byte_order(array)
    return with_subclass(array, wrapper.subclass)


def _skip_padding(has_padding: bool, file: IO[bytes], name: str) -> int:
    """Read joblib >= 1.2's padding (a length byte, then that many bytes); its size in bytes."""
    if not has_padding:
        return 0
    length = file.read(1)
    if len(length) != 1 or len(file.read(length[0])) != length[0]:
        raise ArchiveCorruptedError(name, "the file is truncated: it ends in an array's padding")
    return 1 + length[0]


def _read(layout: _Layout, has_padding: bool, file: IO[bytes], name: str) -> np.ndarray[Any, Any]:
    _skip_padding(has_padding, file, name)
    check_allocation(layout.nbytes, f"an array of shape {layout.shape} and dtype {layout.dtype}")
    flat = np.empty(math.prod(layout.shape), dtype=layout.dtype)
    if flat.nbytes:
        view = memoryview(flat.view(np.uint8))  # type: ignore[arg-type]
        filled = 0
        while filled < flat.nbytes:
            n = file.readinto(view[filled:])  # type: ignore[attr-defined]
            if not n:
                raise ArchiveCorruptedError(
                    name, f"the file is truncated: an array of {flat.nbytes} bytes ends after {filled}"
                )
            filled += n
    return flat.reshape(layout.shape, order=layout.order)


def _mapped(
    layout: _Layout, has_padding: bool, file: IO[bytes], reading: JoblibReading
) -> np.memmap[Any, Any]:
    assert reading.path is not None and reading.mmap_mode is not None
    start = file.tell()
    offset = start + _skip_padding(has_padding, file, reading.name)
    nbytes = layout.nbytes
    # np.memmap grows a short file in 'r+' mode: a truncated file must fail, not be extended.
    size = os.fstat(file.fileno()).st_size
    if offset + nbytes > size:
        raise ArchiveCorruptedError(
            reading.name, f"the file is truncated: an array of {nbytes} bytes at {offset} ends past {size}"
        )
    mapped: np.memmap[Any, Any] = np.memmap(  # type: ignore[call-overload]
        reading.path,
        dtype=layout.dtype,
        mode=reading.mmap_mode,
        offset=offset,
        shape=layout.shape,
        order=layout.order,
    )
    file.seek(offset + nbytes)
    if not has_padding and start % ALIGNMENT_NBYTES:
        warnings.warn(
            f"A memmapped array of {reading.path} starts at byte {start}, not a multiple of "
            f"{ALIGNMENT_NBYTES} (joblib < 1.2 did not align arrays): libraries such as BLAS or "
            "PyTorch may end in a segmentation fault on it. Load the file without mmap_mode, or "
            "write it again (zoblib.dump or joblib >= 1.2) to get aligned arrays.",
            ZoblibWarning,
            stacklevel=2,
        )
    return mapped


def native_byte_order(array: Any) -> Any:
    """``array`` in the machine's byte order, values kept, as joblib's ``load`` converts it.

    A dtype of the other byte order is converted, and so is a structured dtype whose fields
    are all of the other byte order; other arrays (a structured dtype mixing byte orders
    included) are returned as they are.

    Examples
    --------
    >>> import numpy as np
    >>> converted = native_byte_order(np.arange(3, dtype=">i4" if np.little_endian else "<i4"))
    >>> converted.dtype.isnative, converted.tolist()
    (True, [0, 1, 2])
    """
    dtype = array.dtype
    fields = dtype.fields
    opposite = dtype.byteorder == _OPPOSITE_BYTE_ORDER or (
        dtype.byteorder == "|"
        and bool(fields)
        and all(field[0].byteorder == _OPPOSITE_BYTE_ORDER for field in fields.values())
    )
    return array.astype(dtype.newbyteorder("=")) if opposite else array


def with_subclass(array: Any, subclass: Any) -> Any:
    """``array`` as the ndarray subclass it was dumped as (``np.matrix``), a view of the same data.

    ``np.memmap`` and ``np.ndarray`` keep the array as it was read; anything that is not an
    ndarray subclass is ignored, as it cannot describe an array.

    Examples
    --------
    >>> import numpy as np
    >>> type(with_subclass(np.eye(2), np.matrix)).__name__, type(with_subclass(np.eye(2), dict)).__name__
    ('matrix', 'ndarray')
    """
    if (
        isinstance(subclass, type)
        and issubclass(subclass, np.ndarray)
        and subclass not in (np.ndarray, np.memmap)
        and type(array) is not subclass
    ):
        return array.view(subclass)
    return array
