"""How a numpy array contributes to a hash: its dtype, its shape and a digest of its data.

The data digest is defined on the array's bytes in C order, whatever the memory layout, so an
array, its Fortran-ordered copy, a strided view and a ``np.memmap`` of the same values all
digest alike. ``zoblib.dump`` records :func:`array_digest` for each array it writes; an array
loaded back read-only carries that string as ``zoblib_digest``, and :func:`recorded_digest`
lets the hasher use it instead of reading the data again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import numpy.typing as npt

from zoblib.errors import HashingError
from zoblib.hashing.algorithms import DEFAULT_HASH_NAME, HashObject, new_hash_object

#: Attribute under which loaded arrays carry the digest ``dump`` recorded for them.
DIGEST_ATTRIBUTE = "zoblib_digest"

# A non-contiguous array is copied to C order through one buffer of about this size, so hashing
# it needs bounded extra memory. A few MiB keeps the buffer in cache while the hash reads it.
_BLOCK_NBYTES = 8 * 2**20
# Columns copied at a time when the last axis is not the fastest-varying one in memory (a
# Fortran-ordered array): narrow tiles keep the strided reads within a few pages, which runs
# several times faster than numpy's copy of whole rows.
_TILE_COLUMNS = 64


def array_digest(arr: npt.NDArray[Any], *, hash_name: str = DEFAULT_HASH_NAME) -> str:
    """Digest an array's data, the bytes of its values in C order.

    Only the data is digested: dtype and shape are not part of it (``hash`` adds them). The
    bytes are those of ``np.ascontiguousarray(arr)``, but a C-contiguous array is read in place
    and any other layout is copied through a bounded buffer, never in full. The padding bytes of
    a structured dtype (``align=True``, or explicit offsets) are no part of its values and are
    left out: each element gives the bytes of its fields in field order, one after another, as
    in the same dtype declared without padding (nested fields and subarrays of them included).

    Parameters
    ----------
    arr : numpy.ndarray
        The array; ``np.memmap`` and other subclasses are read as plain arrays.
    hash_name : str, default 'xxh3_128'
        The algorithm, one of the names ``zoblib.hash`` accepts.

    Returns
    -------
    str
        ``"<hash_name>:<hexdigest>"``, for example ``"xxh3_128:6fa1..."``. This is the exact string
        an archive records and a loaded array carries as its ``zoblib_digest`` attribute.

    Raises
    ------
    HashingError
        If the array holds Python objects (``dtype=object``, variable-width strings, or a
        structured dtype with such a field): their bytes are memory addresses.
    ValueError
        If ``hash_name`` is unknown.

    Examples
    --------
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> array_digest(a) == array_digest(np.asfortranarray(a))
    True
    >>> array_digest(np.zeros(0), hash_name="md5")
    'md5:d41d8cd98f00b204e9800998ecf8427e'
    """
    arr = np.asarray(arr)
    if arr.dtype.hasobject:
        raise HashingError(
            f"array_digest cannot digest an array of dtype {arr.dtype} (it holds Python "
            "objects); zoblib.hash hashes such arrays element by element"
        )
    hasher = new_hash_object(hash_name)
    feed_c_order(hasher.update, arr)
    return digest_string(hasher, hash_name)


def digest_string(hasher: HashObject, hash_name: str = DEFAULT_HASH_NAME) -> str:
    """The digest string (``"<hash_name>:<hexdigest>"``) of a hash object fed an array's bytes
    as :func:`array_digest` feeds them."""
    return f"{hash_name}:{hasher.hexdigest()}"


def feed_c_order(update: Callable[[memoryview], object], arr: npt.NDArray[Any]) -> None:
    """Pass the bytes of the values of ``arr`` in C order to ``update``, in pieces.

    Parameters
    ----------
    update : callable
        Receives consecutive pieces of the byte stream, as ``memoryview`` objects valid only
        during the call.
    arr : numpy.ndarray
        The array; it is never copied whole. Padding in a structured dtype is skipped (see
        :func:`array_digest`).
    """
    packed = packed_dtype(arr.dtype)
    if packed is None and arr.flags.c_contiguous:
        if arr.nbytes:
            # reshape(-1) of a C-contiguous array is a view; viewing it as bytes sidesteps the
            # dtypes (datetime64, structured) that memoryview cannot export.
            update(arr.reshape(-1).view(np.uint8).data)
        return
    if packed is not None and arr.flags.c_contiguous:
        _feed_field_bytes(update, arr, packed)
        return
    _feed_copies(update, arr.reshape(1) if arr.ndim == 0 else arr, packed or arr.dtype)


#: A padded struct with more byte runs than this is packed field by field instead.
_MAX_FIELD_RUNS = 64


def _feed_field_bytes(
    update: Callable[[memoryview], object], arr: npt.NDArray[Any], packed: np.dtype[Any]
) -> None:
    # A C-contiguous padded struct (a scikit-learn tree's nodes): its packed bytes are byte
    # runs of each element, copied as plain bytes through one buffer, several times faster
    # than numpy's field-by-field assignment into the packed dtype.
    runs = _field_runs(arr.dtype, 0)
    if len(runs) > _MAX_FIELD_RUNS or not arr.nbytes:
        _feed_copies(update, arr.reshape(-1), packed)
        return
    elements = arr.reshape(-1).view(np.uint8).reshape(-1, arr.dtype.itemsize)
    rows_per_block = max(1, _BLOCK_NBYTES // packed.itemsize)
    buffer = np.empty((min(rows_per_block, len(elements)), packed.itemsize), dtype=np.uint8)
    for start in range(0, len(elements), rows_per_block):
        block = elements[start : start + rows_per_block]
        out = buffer[: len(block)]
        written = 0
        for offset, nbytes in runs:
            out[:, written : written + nbytes] = block[:, offset : offset + nbytes]
            written += nbytes
        update(out.reshape(-1).data)


def _field_runs(dtype: np.dtype[Any], base: int) -> list[tuple[int, int]]:
    """The (offset, nbytes) byte runs of ``dtype``'s values in packed order, merged where adjacent."""
    runs: list[tuple[int, int]] = []
    if dtype.subdtype is not None:
        item, shape = dtype.subdtype
        for index in range(math.prod(shape)):
            runs.extend(_field_runs(item, base + index * item.itemsize))
    elif dtype.fields is not None and dtype.names is not None:
        for name in dtype.names:
            field_dtype, offset = dtype.fields[name][:2]
            runs.extend(_field_runs(field_dtype, base + offset))
    else:
        runs.append((base, dtype.itemsize))
    merged: list[tuple[int, int]] = []
    for offset, nbytes in runs:
        if merged and merged[-1][0] + merged[-1][1] == offset:
            merged[-1] = (merged[-1][0], merged[-1][1] + nbytes)
        elif nbytes:
            merged.append((offset, nbytes))
    return merged


def _feed_copies(update: Callable[[memoryview], object], arr: npt.NDArray[Any], dtype: np.dtype[Any]) -> None:
    # Copy slabs of whole rows (along axis 0) into one reused buffer of ``dtype``, C-contiguous.
    row_nbytes = dtype.itemsize * math.prod(arr.shape[1:])
    if row_nbytes == 0 or arr.shape[0] == 0:
        return
    if arr.ndim > 1 and row_nbytes > _BLOCK_NBYTES:
        for row in arr:
            _feed_copies(update, row, dtype)
        return
    rows_per_block = max(1, _BLOCK_NBYTES // row_nbytes)
    buffer = np.empty((min(rows_per_block, arr.shape[0]), *arr.shape[1:]), dtype=dtype)
    for start in range(0, arr.shape[0], rows_per_block):
        block = arr[start : start + rows_per_block]
        out = buffer[: block.shape[0]]
        _copy(out, block)
        update(out.reshape(-1).view(np.uint8).data)


def _copy(out: npt.NDArray[Any], block: npt.NDArray[Any]) -> None:
    # Assignment, not np.copyto: into a packed structured dtype it goes field by field.
    strides = [abs(stride) for stride in block.strides]
    if block.ndim < 2 or strides[-1] <= min(strides):
        out[...] = block
        return
    for start in range(0, block.shape[-1], _TILE_COLUMNS):
        out[..., start : start + _TILE_COLUMNS] = block[..., start : start + _TILE_COLUMNS]


def packed_dtype(dtype: np.dtype[Any]) -> np.dtype[Any] | None:
    """The dtype with the same fields and no padding, or None if ``dtype`` has no padding.

    Parameters
    ----------
    dtype : numpy.dtype
        Any dtype; only structured ones (or subarrays of them) can have padding.

    Returns
    -------
    numpy.dtype or None
        Fields in the same order, each packed in turn, at consecutive offsets.

    Examples
    --------
    >>> packed_dtype(np.dtype([("a", "u1"), ("b", "<i4")], align=True))
    dtype([('a', 'u1'), ('b', '<i4')])
    >>> packed_dtype(np.dtype([("a", "u1"), ("b", "<i4")])) is None
    True
    """
    if dtype.names is None and dtype.subdtype is None:
        return None
    packed = _pack(dtype)
    return None if packed.itemsize == dtype.itemsize else packed


def _pack(dtype: np.dtype[Any]) -> np.dtype[Any]:
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return np.dtype((_pack(base), shape))
    if dtype.fields is None or dtype.names is None:
        return dtype
    formats = [_pack(dtype.fields[name][0]) for name in dtype.names]
    return np.dtype({"names": list(dtype.names), "formats": formats})


def dtype_token(dtype: np.dtype[Any]) -> Hashable:
    """Describe a dtype by value, as a tuple or string that pickles the same in every process.

    Byte order, itemsize, datetime unit, field names, offsets and titles are included; the
    scalar type's name is not for numpy's own types, so ``np.longlong`` and ``np.int64`` (both
    ``'<i8'``) agree, as their arrays' values do.

    Parameters
    ----------
    dtype : numpy.dtype
        Any dtype.

    Returns
    -------
    hashable
        A string such as ``'<f8'`` or a nested tuple for structured and subarray dtypes.

    Examples
    --------
    >>> dtype_token(np.dtype(">i8"))
    '>i8'
    >>> dtype_token(np.dtype([("x", "<f4"), ("y", "u1")]))
    ('struct', 5, (('x', '<f4', 0, None), ('y', '|u1', 4, None)))
    """
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return ("subarray", dtype_token(base), shape)
    if dtype.fields is not None and dtype.names is not None:
        fields = []
        for name in dtype.names:
            field = dtype.fields[name]
            title = field[2] if len(field) > 2 else None
            fields.append((name, dtype_token(field[0]), field[1], title))
        return ("struct", dtype.itemsize, tuple(fields))
    if dtype.isbuiltin == 2:
        # A dtype registered by another package (ml_dtypes' bfloat16 is '<V2' to numpy).
        scalar_type = dtype.type
        return (dtype.str, f"{scalar_type.__module__}.{scalar_type.__qualname__}")
    return dtype.str


def recorded_digest(obj: object, hash_name: str) -> str | None:
    """Return the ``zoblib_digest`` that ``obj`` carries, if it may stand for its data.

    It may when it is a string made by ``hash_name``'s algorithm and, for a numpy array, the
    array is read-only (a writable one may have changed since the digest was recorded).

    Parameters
    ----------
    obj : object
        A ``np.memmap`` or lazy array loaded from an archive, or anything else.
    hash_name : str
        The algorithm the caller hashes with.

    Returns
    -------
    str or None
        The recorded digest, or None if the data must be read.
    """
    digest = getattr(obj, DIGEST_ATTRIBUTE, None)
    if not isinstance(digest, str) or not digest.startswith(f"{hash_name}:"):
        return None
    if isinstance(obj, np.ndarray) and obj.flags.writeable:
        return None
    return digest
