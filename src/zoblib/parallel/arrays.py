"""Numpy arrays by reference: written once to a shared folder, memory-mapped by every reader.

A parallel call never pickles a big array through a pipe. The sender writes it as an
uncompressed zoblib archive (a ``.zarr`` directory) in the call's temporary folder, or, for an
array that already is a memmap of a file (a zoblib archive loaded with ``mmap_mode``, an
``np.memmap``, ``np.load(..., mmap_mode=...)``), just names that file. It sends an
:class:`ArrayRef`; the receiver maps the file, so all workers share one copy of the pages.
"""

from __future__ import annotations

import mmap
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from zoblib.archive.api import dump, load

#: The ``mmap_mode`` values accepted by ``Parallel`` (``'w+'`` is read as ``'r+'``).
MMAP_MODES = ("r", "r+", "w+", "c")

Order = Literal["C", "F"]
OpenMode = Literal["r", "r+", "c"]


@dataclass(frozen=True)
class ArrayRef:
    """Where an array's bytes are and how to view them; the rest of the array travels by name.

    Attributes
    ----------
    path
        The file holding the bytes, or the zoblib archive holding the array.
    dtype, shape, order
        How to view them.
    offset
        Position of the first byte in the file (not used for archives).
    mode
        The ``np.memmap`` mode the receiver opens the file with.
    archive
        Whether ``path`` is a zoblib archive (opened with :func:`zoblib.load`) rather than a
        raw file mapped at ``offset``.
    """

    path: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    order: Order
    offset: int
    mode: str
    archive: bool = False


def memmap_mode(mode: str) -> OpenMode:
    """Return the mode a reader opens an existing file with (``'w+'`` would truncate it)."""
    if mode not in MMAP_MODES:
        raise ValueError(f"mmap_mode must be None or one of {MMAP_MODES}, got {mode!r}")
    return "r+" if mode == "w+" else cast(OpenMode, mode)


def can_share(array: np.ndarray[Any, Any]) -> bool:
    """Tell whether an array's bytes can be mapped from a file (no Python objects inside)."""
    return not array.dtype.hasobject


def write_shared(array: np.ndarray[Any, Any], folder: str, mode: str = "r") -> ArrayRef:
    """Write an array as a new uncompressed zoblib archive in ``folder``; return its reference.

    Parameters
    ----------
    array
        A numpy array without Python objects inside (see :func:`can_share`).
    folder
        An existing folder; it is not created, so a writer racing the folder's removal fails
        instead of leaving files behind.
    mode
        The mode readers map the array with (``'r'``, ``'r+'``, ``'c'``).

    Returns
    -------
    ArrayRef
        The reference to send in place of the array.

    Raises
    ------
    OSError
        If the archive cannot be written (no space left, folder gone); nothing is left behind.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"the call's temporary folder {folder!r} is gone")
    path = os.path.join(folder, f"{uuid.uuid4().hex}.zarr")
    order: Order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    try:
        # Uncompressed, and never inlined in the skeleton: the reader maps the chunk file.
        dump(array, path, compress=0, inline_threshold=0, fsync=False, checksum=False)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return ArrayRef(
        path=path,
        dtype=array.dtype,
        shape=tuple(array.shape),
        order=order,
        offset=0,
        mode=memmap_mode(mode),
        archive=True,
    )


def open_shared(ref: ArrayRef, mmap_mode: str | None = None) -> np.ndarray[Any, Any]:
    """Map the array a reference points to.

    Parameters
    ----------
    ref
        A reference made by :func:`write_shared` or :func:`file_backing`.
    mmap_mode
        Override the reference's own mode (``'c'`` gives a writable private copy-on-write view).

    Returns
    -------
    numpy.ndarray
        An ``np.memmap`` over the file (for Fortran-ordered arrays, a view of one); no bytes
        are read until they are touched.
    """
    mode = memmap_mode(mmap_mode or ref.mode)
    if ref.archive:
        loaded: np.ndarray[Any, Any] = load(ref.path, mmap_mode=mode)
        return loaded
    mapped: np.memmap[Any, Any] = np.memmap(
        ref.path,
        dtype=ref.dtype,
        mode=mode,
        offset=ref.offset,
        shape=ref.shape,
        order=ref.order,
    )
    return mapped


def file_backing(array: np.ndarray[Any, Any]) -> ArrayRef | None:
    """Return a reference to the file an array is a memory map of, or None.

    Works for ``np.memmap`` objects and for contiguous views of them (slices, ``np.asarray``),
    whatever wrote the file. Arrays mapped copy-on-write (``mode='c'``) are not referenced: they
    may hold private changes the file does not have.

    Parameters
    ----------
    array
        Any numpy array.

    Returns
    -------
    ArrayRef or None
        A reference opening the same bytes, read-only unless the array is writable and its
        file was opened ``'r+'`` or ``'w+'``; None when the array is not backed by a file that
        still exists, or is not contiguous.
    """
    root = _root_memmap(array)
    if root is None or root.mode not in ("r", "r+", "w+") or root.filename is None:
        return None
    if not (array.flags.c_contiguous or array.flags.f_contiguous) or array.size == 0:
        return None
    if not os.path.exists(root.filename):
        return None
    order: Order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    writable = array.flags.writeable and root.mode in ("r+", "w+")
    return ArrayRef(
        path=os.fspath(root.filename),
        dtype=array.dtype,
        shape=tuple(array.shape),
        order=order,
        offset=int(root.offset) + (array.ctypes.data - root.ctypes.data),
        mode="r+" if writable else "r",
    )


def _root_memmap(array: np.ndarray[Any, Any]) -> np.memmap[Any, Any] | None:
    """Return the memmap that owns the mapping behind ``array`` (its ``base`` is the mmap)."""
    node: Any = array
    while isinstance(node, np.ndarray):
        if isinstance(node, np.memmap) and isinstance(node.base, mmap.mmap):
            return node
        node = node.base
    return None
