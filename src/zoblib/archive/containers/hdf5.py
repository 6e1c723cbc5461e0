"""The HDF5 container (``.h5``/``.hdf5``): one dataset per node, readable by h5py and HDF5 tools.

- The root record is the root group's attribute ``zoblib``, as JSON text; the file uses HDF5's
  1.10 file format, whose metadata (object headers, chunk indexes) carries HDF5's own checksums.
- Each node's dataset has the node's shape and real type (``hdf5_layout``: the logical layout);
  version 2 archives written before it (and version 1) hold the first layout, still read:
  Fortran-ordered nodes transposed, unicode and datetimes as opaque bytes.
- An uncompressed node is a contiguous dataset (memory-mappable at its offset) whose attribute
  ``crc32c`` is the CRC-32C of its value bytes; an uncompressed Fortran-ordered one is chunked
  in bands without filters (``hdf5_fortran``), since HDF5 stores C order only.
- A compressed node is a chunked dataset declaring the HDF5 filter of its codec (deflate, or
  hdf5plugin's Blosc, Zstd, BZip2); zoblib writes and reads its chunks' bytes itself (see
  ``hdf5_chunks``), so loading needs no filter plugin. Each chunk is the codec's output; the root
  record lists its CRC-32C (format version 1: HDF5's Fletcher-32 follows the codec's output).

Before reading a node the reader checks what HDF5 reports (layout marker, shape, datatype,
storage layout, chunk shape, filters, storage size) against the root record and refuses any
difference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import h5py
import numpy as np

from zoblib.archive.chunks import byte_view
from zoblib.archive.containers.base import ByteRange, ContainerReader, LastChunks, read_exactly
from zoblib.archive.containers.hdf5_chunks import (
    FILTER_OF_CODEC,
    FLETCHER32_FILTER,
    decode_stored,
    hdf5_codec,
    hdf5_filter,
    split_fletcher32,
)
from zoblib.archive.containers.hdf5_fortran import band_spans, raw_items
from zoblib.archive.containers.hdf5_layout import (
    BANDS,
    CHECKSUM_ATTRIBUTE,
    COMPRESSED,
    CONTIGUOUS,
    DTYPE_ATTRIBUTE,
    H5PY_ERRORS,
    LAYOUT_ATTRIBUTE,
    LOGICAL,
    MAX_BAND_NBYTES,
    DatasetForm,
    band_nbytes,
    chunk_offsets,
    dataset_form,
    is_banded,
)
from zoblib.archive.containers.hdf5_writer import Hdf5Writer
from zoblib.archive.dtypes import dtype_to_json
from zoblib.archive.guard import parse_json
from zoblib.archive.integrity import ChecksumMismatch, checksum
from zoblib.archive.lazy import ChunkGrid
from zoblib.archive.nodes import ArrayNode
from zoblib.errors import ArchiveCorruptedError, ArchiveError, ChecksumError, ZoblibError

__all__ = ["Hdf5Reader", "Hdf5Writer", "hdf5_codec", "hdf5_filter", "is_hdf5"]

ROOT_ATTRIBUTE = "zoblib"


def is_hdf5(path: str) -> bool:
    """Whether ``path`` is an HDF5 file (signature at 0 or at a user-block boundary)."""
    try:
        return bool(h5py.is_hdf5(path))
    except (OSError, ValueError, RuntimeError):
        return False


@dataclass(frozen=True)
class _Checked:
    """A node's dataset, once it matched the node's form."""

    dataset: Any
    form: DatasetForm
    #: The band chunk shape of an uncompressed F node in the logical layout.
    bands: tuple[int, ...] | None
    #: The node as its compressed chunks are decoded (their bytes' order).
    decoding: ArrayNode


class Hdf5Reader(ContainerReader):
    """Reads an HDF5 archive: h5py for metadata, ``pread`` for every stored byte.

    Any h5py error becomes an :class:`ArchiveCorruptedError` naming the file.
    """

    format_name: ClassVar[str] = "hdf5"
    supports_memmap: ClassVar[bool] = True

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._fd: int | None = None
        self._file: Any = None
        self._checked: dict[str, _Checked] = {}
        self._chunks = LastChunks(path)
        self._bands = LastChunks(path)
        with self._h5py("the HDF5 file cannot be opened"):
            self._file = h5py.File(path, "r")
        try:
            self._fd = os.open(path, os.O_RDONLY)
            self._file_nbytes = os.fstat(self._fd).st_size
        except OSError as exc:
            self.close()
            raise ArchiveCorruptedError(path, f"the HDF5 file cannot be opened: {exc}") from exc

    @contextlib.contextmanager
    def _h5py(self, problem: str) -> Iterator[None]:
        try:
            yield
        except ZoblibError:
            raise
        except H5PY_ERRORS as exc:
            raise ArchiveCorruptedError(self.path, f"{problem}: {exc}") from exc

    def root_attributes(self) -> dict[str, Any]:
        with self._h5py("the root group's attributes cannot be read"):
            attributes = dict(self._file.attrs.items())
        if ROOT_ATTRIBUTE not in attributes:
            raise ArchiveError(self.path, "not a zoblib archive: the HDF5 root has no 'zoblib' attribute")
        parsed = {}
        for name, value in attributes.items():
            if not isinstance(value, (str, bytes)):
                raise ArchiveCorruptedError(self.path, f"the root attribute {name!r} is not JSON text")
            parsed[name] = parse_json(value, self.path, f"the root attribute {name!r}")
        return parsed

    # ---- what HDF5 reports, checked against the record ---------------------------------------

    def _dataset(self, node: ArrayNode) -> _Checked:
        """The node's dataset, once it matches the node in every way the reader relies on."""
        checked = self._checked.get(node.path)
        if checked is not None:
            return checked
        try:
            form = dataset_form(node)
        except ValueError as exc:
            raise ArchiveCorruptedError(self.path, f"node {node.path!r}: {exc}") from exc
        with self._h5py(f"dataset {node.path!r} cannot be opened"):
            dataset = self._file.get(node.path)
            if not isinstance(dataset, h5py.Dataset):
                raise ArchiveCorruptedError(
                    self.path, f"the archive has no dataset {node.path!r} (or HDF5 finds it damaged)"
                )
            problem = _mismatch(node, form, dataset)
        if problem is not None:
            raise ArchiveCorruptedError(
                self.path, f"dataset {node.path!r} does not match the archive's record: {problem}"
            )
        bands = tuple(dataset.chunks) if form.storage == BANDS else None
        decoding = (
            node if form.chunk_order == node.order else dataclasses.replace(node, order=form.chunk_order)
        )
        checked = self._checked[node.path] = _Checked(dataset, form, bands, decoding)
        return checked

    # ---- compressed nodes ------------------------------------------------------------------

    def read_chunk(self, node: ArrayNode, index: tuple[int, ...]) -> np.ndarray[Any, Any]:
        """One chunk, checked and decoded, of the full chunk shape (the last one is cached)."""
        where = f"chunk {index} of {node.path!r}"
        return self._chunks.get(node, index, where, lambda: self._read_chunk(node, index, where))

    def _read_chunk(self, node: ArrayNode, index: tuple[int, ...], where: str) -> np.ndarray[Any, Any]:
        checked = self._dataset(node)
        # Codec output is at most a little larger than the chunk (incompressible data).
        limit = node.chunk_nbytes + node.chunk_nbytes // 16 + (64 << 10)
        stored, mask = self._stored_chunk(checked, chunk_offsets(node, checked.form, index), limit, where)
        if node.chunk_checksums is not None or not node.checksum:
            if mask != 0:
                raise ValueError(f"its filter mask is {mask}; zoblib writes 0")
            if node.chunk_checksums is not None and checksum(stored) != node.expected_checksum(index):
                raise ChecksumMismatch(
                    "its CRC-32C is not the one the root record holds for this place "
                    "(damaged, or chunks swapped, copied or replaced)"
                )
            return decode_stored(checked.decoding, stored)
        # Format version 1: the codec's filter (which HDF5 skipped if it failed), then Fletcher-32.
        if mask & ~1:
            raise ValueError(f"its filter mask is {mask}: the Fletcher-32 filter was skipped")
        return decode_stored(checked.decoding, split_fletcher32(stored), raw=bool(mask & 1))

    def _stored_chunk(
        self, checked: _Checked, offsets: tuple[int, ...], limit: int, where: str
    ) -> tuple[bytearray, int]:
        """The stored bytes of the chunk at ``offsets`` (at most ``limit``) and its filter mask."""
        place, size, mask = self._chunk_place(checked, offsets, limit, where)
        stored = bytearray(size)
        assert self._fd is not None, "reader is closed"
        read_exactly(self._fd, memoryview(stored), place, self.path)
        return stored, mask

    def _chunk_place(
        self, checked: _Checked, offsets: tuple[int, ...], limit: int, where: str
    ) -> tuple[int, int, int]:
        """Where the chunk at ``offsets`` lies (file offset, size at most ``limit``), and its mask."""
        with self._h5py(f"the chunk index of {checked.dataset.name!r} is damaged"):
            info = checked.dataset.id.get_chunk_info_by_coord(offsets)
        if info.byte_offset is None or info.size is None:
            raise ArchiveCorruptedError(self.path, f"{where} is missing")
        if not 0 < info.size <= limit or info.byte_offset + info.size > self._file_nbytes:
            raise ArchiveCorruptedError(self.path, f"{where}: the chunk index gives an impossible place")
        return int(info.byte_offset), int(info.size), int(info.filter_mask)

    # ---- reading ---------------------------------------------------------------------------

    def read_region(
        self, node: ArrayNode, selection: tuple[slice, ...], out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        if self._dataset(node).form.storage == COMPRESSED:
            return ChunkGrid(node, lambda index: self.read_chunk(node, index)).read(selection, out)
        # Uncompressed: the whole node, checked, then the selection (memory maps read the rest).
        whole: np.ndarray[Any, Any] = np.empty(
            node.shape, dtype=node.dtype, order="F" if node.order == "F" else "C"
        )
        if whole.size:
            view = byte_view(whole, node.order).data
            self.read_raw_into(node, view, 0)
            stored = node.chunk_checksums[0] if node.chunk_checksums else self.raw_checksum(node)
            if node.checksum and stored is not None and stored != checksum(view):
                raise ChecksumError(self.path, f"{node.path!r} does not match its checksum")
        values = whole[selection] if node.shape else whole
        if out is None:
            return np.array(values, order="F" if node.order == "F" else "C")
        out[...] = values
        return out

    def read_raw_into(self, node: ArrayNode, out: memoryview, offset: int) -> None:
        checked = self._dataset(node)
        if checked.bands is not None:
            self._read_bands_into(node, checked, out, offset)
            return
        where = self.raw_location(node)
        if where is None or offset + len(out) > where.nbytes:
            raise ArchiveCorruptedError(self.path, f"dataset {node.path!r} is not stored as expected")
        assert self._fd is not None, "reader is closed"
        read_exactly(self._fd, out, where.offset + offset, self.path)

    def _read_bands_into(self, node: ArrayNode, checked: _Checked, out: memoryview, offset: int) -> None:
        """Bytes ``[offset, offset + len(out))`` of an F node's memory, from its band chunks."""
        assert checked.bands is not None
        stop = offset + len(out)
        if stop > node.nbytes:
            raise ArchiveCorruptedError(self.path, f"dataset {node.path!r} is not stored as expected")

        def nbytes_of(extent: tuple[int, ...]) -> int:
            return band_nbytes(extent, node.dtype.itemsize)

        for origin, extent, first in band_spans(node.shape, checked.bands, node.dtype.itemsize, offset, stop):
            where = f"band chunk {origin} of {node.path!r}"
            if (
                offset <= first
                and first + nbytes_of(extent) <= stop
                and _f_order_is_c_order(extent, checked.bands)
            ):
                # The chunk's C-order bytes start with its part's F-order bytes: read them in place.
                nbytes = band_nbytes(checked.bands, node.dtype.itemsize)
                place, size, mask = self._chunk_place(checked, origin, nbytes, where)
                if mask != 0 or size != nbytes:
                    raise ArchiveCorruptedError(self.path, f"{where} is not stored as zoblib writes it")
                assert self._fd is not None, "reader is closed"
                part = out[first - offset : first - offset + nbytes_of(extent)]
                read_exactly(self._fd, part, place, self.path)
                continue
            read = functools.partial(self._read_band, node, checked, origin, extent, where)
            values = self._bands.get(node, origin, where, read)
            low, high = max(offset, first), min(stop, first + values.nbytes)
            out[low - offset : high - offset] = values.data[low - first : high - first]

    def _read_band(
        self, node: ArrayNode, checked: _Checked, origin: tuple[int, ...], extent: tuple[int, ...], where: str
    ) -> np.ndarray[Any, Any]:
        """The F-order bytes (flat uint8) of the array's part in the band chunk at ``origin``."""
        assert checked.bands is not None
        items = raw_items(node.dtype)
        nbytes = band_nbytes(checked.bands, items.itemsize)
        stored, mask = self._stored_chunk(checked, origin, nbytes, where)
        if mask != 0 or len(stored) != nbytes:
            raise ValueError(f"it holds {len(stored)} bytes with filter mask {mask}, expected {nbytes} and 0")
        chunk = np.frombuffer(stored, dtype=items).reshape(checked.bands)
        part = np.asfortranarray(chunk[tuple(slice(0, e) for e in extent)])
        return byte_view(part, "F")

    def raw_checksum(self, node: ArrayNode) -> int | None:
        with self._h5py(f"the attributes of {node.path!r} cannot be read"):
            stored = self._dataset(node).dataset.attrs.get(CHECKSUM_ATTRIBUTE)
            return None if stored is None else int(stored)

    def raw_location(self, node: ArrayNode) -> ByteRange | None:
        checked = self._dataset(node)
        if checked.form.storage != CONTIGUOUS:
            return None  # compressed, or F-ordered bytes HDF5 holds in C order
        with self._h5py(f"dataset {node.path!r} cannot be located"):
            offset = checked.dataset.id.get_offset()
        if node.nbytes == 0:
            return ByteRange(self.path, 0, 0)
        if offset is None or offset + node.nbytes > self._file_nbytes:
            raise ArchiveCorruptedError(self.path, f"dataset {node.path!r} lies outside the file")
        return ByteRange(self.path, int(offset), node.nbytes)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._file is not None:
            with contextlib.suppress(*H5PY_ERRORS):
                self._file.close()
            self._file = None
        self._checked.clear()
        self._chunks.clear()
        self._bands.clear()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _mismatch(node: ArrayNode, form: DatasetForm, dataset: Any) -> str | None:
    """How ``dataset`` differs from the ``form`` its node entry implies, if it does."""
    marker = dataset.attrs.get(LAYOUT_ATTRIBUTE)
    if marker != form.layout:
        recorded = form.layout or "first"
        return f"the record gives layout {recorded!r}, the dataset's {LAYOUT_ATTRIBUTE} is {marker!r}"
    named = dataset.attrs.get(DTYPE_ATTRIBUTE)
    if (named is not None) != form.dtype_attribute:
        return "its datatype is stored in another form"
    if form.layout == LOGICAL and named is not None and not _names(named, node.dtype):
        return f"its {DTYPE_ATTRIBUTE} is not the record's dtype"
    if tuple(dataset.shape) != form.shape:
        return f"shape {dataset.shape}, expected {form.shape}"
    if dataset.id.get_type() != form.hdf5_type():
        return f"its HDF5 datatype is not the one of {node.dtype}"
    creation = dataset.id.get_create_plist()
    filters = [creation.get_filter(i)[0] for i in range(creation.get_nfilters())]
    layout = creation.get_layout()
    if form.storage == CONTIGUOUS:
        if layout != h5py.h5d.CONTIGUOUS or filters:
            return "it is not a contiguous dataset without filters"
        if node.nbytes and int(dataset.id.get_storage_size()) != node.nbytes:
            return f"it stores {dataset.id.get_storage_size()} bytes, expected {node.nbytes}"
        return None
    chunks = tuple(creation.get_chunk()) if layout == h5py.h5d.CHUNKED else None
    if form.storage == BANDS:
        return _band_mismatch(node, dataset, chunks, filters)
    assert node.codec is not None and form.chunks is not None
    if chunks != form.chunks:
        return f"it is not chunked as {form.chunks}"
    expected = [FILTER_OF_CODEC.get(node.codec.codec_id, -1)]
    if node.chunk_checksums is None and (node.checksum or FLETCHER32_FILTER in filters):
        expected.append(FLETCHER32_FILTER)  # format version 1
    if filters != expected:
        return f"its filters are {filters}, expected {expected}"
    return None


def _band_mismatch(
    node: ArrayNode, dataset: Any, chunks: tuple[int, ...] | None, filters: list[int]
) -> str | None:
    if chunks is None or filters or not is_banded(node.shape, chunks):
        return "an uncompressed F-ordered node must be chunked in bands, without filters"
    nbytes = band_nbytes(chunks, node.dtype.itemsize)
    if nbytes > MAX_BAND_NBYTES:
        return f"its chunks hold {nbytes} bytes, more than {MAX_BAND_NBYTES}"
    count = int(np.prod([-(-n // c) for n, c in zip(node.shape, chunks, strict=True)]))
    if dataset.id.get_num_chunks() != count or int(dataset.id.get_storage_size()) != count * nbytes:
        return f"it does not store its {count} chunks of {nbytes} bytes"
    return None


def _f_order_is_c_order(extent: tuple[int, ...], chunks: tuple[int, ...]) -> bool:
    """Whether a band chunk's C-order bytes begin with the F-order bytes of its ``extent``: its
    one axis longer than 1, if any, is followed by axes of chunk length 1."""
    longer = [axis for axis, e in enumerate(extent) if e > 1]
    return not longer or (len(longer) == 1 and all(c == 1 for c in chunks[longer[0] + 1 :]))


def _names(named: Any, dtype: np.dtype[Any]) -> bool:
    """Whether the attribute ``zoblib_dtype`` holds ``dtype``'s JSON record."""
    try:
        return bool(json.loads(named) == dtype_to_json(dtype))
    except (ValueError, TypeError, RecursionError):
        return False
