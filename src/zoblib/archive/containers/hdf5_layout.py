"""How a node is laid out as an HDF5 dataset, in the two layouts of format version 2.

- The **logical** layout (the node entry's ``"hdf5_layout": "logical"``, repeated by the
  dataset's attribute ``zoblib_layout``): the dataset has the node's shape and, where h5py has
  one, its real type: unicode, datetime64, timedelta64 and raw void are HDF5 opaque types tagged
  ``NUMPY:<dtype.str>`` (``h5py.opaque_dtype``), which h5py reads back as that dtype. HDF5 stores
  C order only, so every chunk holds the C-order bytes of its region; an uncompressed
  Fortran-ordered node is chunked without filters in *bands* (full extent of the first axes, part
  of the next, 1 along the rest), which keep its F-order bytes a chunk at a time (see
  ``hdf5_fortran``).
- The **first** layout (no marker: version 2 archives written before the logical one, and
  version 1): a Fortran-ordered node transposed, and a type HDF5 cannot hold exactly as uint8
  with one more axis of ``itemsize``, named by the attribute ``zoblib_dtype``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from zoblib.archive.nodes import ArrayNode

#: The logical layout's name, in node entries and in each dataset's ``zoblib_layout``.
LOGICAL = "logical"
#: The layouts this zoblib reads (``None``: the first one).
LAYOUTS = (None, LOGICAL)
LAYOUT_ATTRIBUTE = "zoblib_layout"
DTYPE_ATTRIBUTE = "zoblib_dtype"
CHECKSUM_ATTRIBUTE = "crc32c"
#: A band chunk's largest size a reader accepts (zoblib writes about 4 MiB).
MAX_BAND_NBYTES = 64 << 20
#: HDF5 errors of h5py (with its own Python exceptions for bad arguments).
H5PY_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)

CONTIGUOUS = "contiguous"
BANDS = "bands"
COMPRESSED = "compressed"


@dataclass(frozen=True)
class DatasetForm:
    """What a node's dataset is: the writer makes it so, the reader refuses anything else."""

    layout: str | None
    #: The dataset's shape.
    shape: tuple[int, ...]
    #: The numpy dtype h5py makes the dataset's HDF5 type from (opaque-tagged where needed).
    file_dtype: np.dtype[Any]
    #: Whether the dataset carries ``zoblib_dtype`` (its type does not say the numpy one).
    dtype_attribute: bool
    #: ``CONTIGUOUS`` (no filters), ``BANDS`` (chunked, no filters) or ``COMPRESSED``.
    storage: str
    #: The chunk shape of a compressed dataset (``None`` otherwise; bands are the writer's choice).
    chunks: tuple[int, ...] | None
    #: The order of the element bytes in each compressed chunk.
    chunk_order: str

    def hdf5_type(self) -> Any:
        """The HDF5 datatype the dataset must have (compared with ``H5Tequal``)."""
        return h5py.h5t.py_create(self.file_dtype, logical=True)


def dataset_form(node: ArrayNode) -> DatasetForm:
    """The dataset ``node`` is stored as, in the layout its entry names.

    Raises ``ValueError`` for a layout this zoblib does not know.
    """
    if node.hdf5_layout not in LAYOUTS:
        raise ValueError(f"unknown HDF5 layout {node.hdf5_layout!r} (this zoblib reads {LOGICAL!r})")
    compressed = node.codec is not None and bool(node.shape) and 0 not in node.shape
    if node.hdf5_layout == LOGICAL:
        file_dtype, named = _logical_file_dtype(node.dtype)
        fortran = node.order == "F" and len(node.shape) > 1 and node.nbytes > 0
        storage = COMPRESSED if compressed else BANDS if fortran else CONTIGUOUS
        chunks = node.chunk_shape if compressed else None
        return DatasetForm(LOGICAL, node.shape, file_dtype, named, storage, chunks, "C")
    opaque = not h5py_can_store(node.dtype)
    return DatasetForm(
        None,
        _first_layout_shape(node, node.shape, opaque),
        np.dtype(np.uint8) if opaque else node.dtype,
        opaque,
        COMPRESSED if compressed else CONTIGUOUS,
        _first_layout_shape(node, node.chunk_shape, opaque) if compressed else None,
        node.order,
    )


def chunk_offsets(node: ArrayNode, form: DatasetForm, index: tuple[int, ...]) -> tuple[int, ...]:
    """Where compressed chunk ``index`` of the node's grid starts in its dataset."""
    start = tuple(i * c for i, c in zip(index, node.chunk_shape, strict=True))
    if form.layout == LOGICAL:
        return start
    return _first_layout_shape(node, start, form.dtype_attribute, extra=0)


def _first_layout_shape(
    node: ArrayNode, shape: tuple[int, ...], opaque: bool, extra: int | None = None
) -> tuple[int, ...]:
    shape = shape[::-1] if node.order == "F" else shape
    return (*shape, node.dtype.itemsize if extra is None else extra) if opaque else shape


def h5py_can_store(dtype: np.dtype[Any]) -> bool:
    """Whether h5py stores ``dtype`` as an HDF5 type of its own (number, bool, bytes, compound)."""
    if dtype.kind in "UMmOV" and dtype.fields is None:
        return False
    if dtype.fields is not None:
        if any(len(field) == 3 for field in dtype.fields.values()):  # titled fields
            return False
        return all(h5py_can_store(dtype.fields[name][0].base) for name in dtype.names or ())
    try:
        return bool(h5py.h5t.py_create(dtype, logical=True).dtype == dtype)
    except (TypeError, ValueError):
        return False


@functools.lru_cache(maxsize=256)
def _logical_file_dtype(dtype: np.dtype[Any]) -> tuple[np.dtype[Any], bool]:
    """The logical layout's file dtype for ``dtype``, and whether ``zoblib_dtype`` must name it."""
    if h5py_can_store(dtype):
        return dtype, False
    if dtype.fields is None and _opaque_round_trips(dtype):
        return h5py.opaque_dtype(dtype), False
    # Structured types h5py cannot make a compound of: opaque element bytes, dtype named aside.
    return h5py.opaque_dtype(np.dtype(f"V{dtype.itemsize}")), True


def _opaque_round_trips(dtype: np.dtype[Any]) -> bool:
    try:
        back = h5py.h5t.py_create(h5py.opaque_dtype(dtype)).dtype
    except (TypeError, ValueError):
        return False
    return bool(back == dtype and back.str == dtype.str)


def file_values(form: DatasetForm, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``values`` (logical layout) as C-contiguous memory that h5py writes without conversion."""
    stored = np.ascontiguousarray(values)
    # An opaque file dtype equals the numpy one it tags (metadata aside): h5py needs the tag.
    return stored.view(form.file_dtype) if form.file_dtype.metadata else stored


def is_banded(shape: tuple[int, ...], chunks: tuple[int, ...]) -> bool:
    """Whether ``chunks`` takes the full extent of the first axes, part of the next, 1 of the rest.

    Only such chunks, in F order of their grid, hold consecutive runs of the F-order bytes.
    """
    if len(chunks) != len(shape) or not all(1 <= c <= max(n, 1) for c, n in zip(chunks, shape, strict=True)):
        return False
    split = next((axis for axis, (c, n) in enumerate(zip(chunks, shape, strict=True)) if c != n), len(shape))
    return all(c == 1 for c in chunks[split + 1 :])


def band_nbytes(chunks: tuple[int, ...], itemsize: int) -> int:
    return math.prod(chunks) * itemsize
