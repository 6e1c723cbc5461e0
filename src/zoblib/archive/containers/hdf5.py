"""The HDF5 container (``.h5``/``.hdf5``): one dataset per node, readable by h5py and HDF5 tools.

- The root record is the root group's attribute ``zoblib``, as JSON text; the file uses HDF5's
  1.10 file format, whose metadata (object headers, chunk indexes) carries HDF5's own checksums.
- An uncompressed node is a contiguous dataset (memory-mappable at its offset) whose attribute
  ``crc32c`` is the CRC-32C of its value bytes.
- A compressed node is a chunked dataset declaring the HDF5 filter of its codec (deflate, or
  hdf5plugin's Blosc, Zstd, BZip2); zoblib writes and reads its chunks' bytes itself (see
  ``hdf5_chunks``), so loading needs no filter plugin. Each chunk is the codec's output; the root
  record lists its CRC-32C (format version 1: HDF5's Fletcher-32 follows the codec's output).
- A Fortran-ordered node is stored transposed (its dataset's shape is reversed).
- Types HDF5 cannot hold (unicode, datetime64, some structured types) are stored as opaque bytes:
  an extra last axis of ``itemsize`` uint8 (attribute ``zoblib_dtype`` names the numpy type).

Before reading a node the reader checks what HDF5 reports (shape, datatype, layout, chunk shape,
filters, storage size) against the root record and refuses any difference.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import h5py
import numpy as np

from zoblib.archive.chunks import byte_view
from zoblib.archive.containers.base import ByteRange, ContainerReader, ContainerWriter, NodeData, read_exactly
from zoblib.archive.containers.hdf5_chunks import (
    FILTER_OF_CODEC,
    FLETCHER32_FILTER,
    decode_stored,
    hdf5_codec,
    hdf5_filter,
    split_fletcher32,
)
from zoblib.archive.containers.staging import clean_leftovers, replace_file, staging_path
from zoblib.archive.dtypes import dtype_to_json
from zoblib.archive.guard import parse_json
from zoblib.archive.integrity import ChecksumMismatch, checksum
from zoblib.archive.lazy import ChunkGrid
from zoblib.archive.nodes import ArrayNode
from zoblib.errors import ArchiveCorruptedError, ArchiveError, ChecksumError, ZoblibError

__all__ = ["Hdf5Reader", "Hdf5Writer", "hdf5_codec", "hdf5_filter", "is_hdf5"]

ROOT_ATTRIBUTE = "zoblib"
CHECKSUM_ATTRIBUTE = "crc32c"
DTYPE_ATTRIBUTE = "zoblib_dtype"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: HDF5 1.10's file format: checksummed metadata (readable by HDF5 1.10 and later).
LIBVER = ("v110", "latest")
#: Disk space reserved beyond what a write needs, for HDF5's metadata (flushed at close).
RESERVE_SLACK_NBYTES = 1 << 20
_KEEP_SIZE, _PUNCH_HOLE = 1, 2
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None
_fallocate = getattr(_libc, "fallocate", None)
if _fallocate is not None:
    _fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
#: HDF5 errors of h5py (with its own Python exceptions for bad arguments).
H5PY_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


def is_hdf5(path: str) -> bool:
    """Whether ``path`` is an HDF5 file (signature at 0 or at a user-block boundary)."""
    try:
        return bool(h5py.is_hdf5(path))
    except (OSError, ValueError, RuntimeError):
        return False


def _h5py_can_store(dtype: np.dtype[Any]) -> bool:
    if dtype.kind in "UMmOV" and dtype.fields is None:
        return False
    if dtype.fields is not None:
        if any(len(field) == 3 for field in dtype.fields.values()):  # titled fields
            return False
        return all(_h5py_can_store(dtype.fields[name][0].base) for name in dtype.names or ())
    try:
        return bool(h5py.h5t.py_create(dtype, logical=True).dtype == dtype)
    except (TypeError, ValueError):
        return False


def _is_chunked(node: ArrayNode) -> bool:
    return node.codec is not None and bool(node.shape) and 0 not in node.shape


def _stored_shape(node: ArrayNode, shape: tuple[int, ...], opaque: bool) -> tuple[int, ...]:
    shape = shape[::-1] if node.order == "F" else shape
    return (*shape, node.dtype.itemsize) if opaque else shape


def _chunk_offsets(node: ArrayNode, index: tuple[int, ...], opaque: bool) -> tuple[int, ...]:
    start = tuple(i * c for i, c in zip(index, node.chunk_shape, strict=True))
    start = start[::-1] if node.order == "F" else start
    return (*start, 0) if opaque else start


def _stored_values(node: ArrayNode, values: np.ndarray[Any, Any], opaque: bool) -> np.ndarray[Any, Any]:
    if node.order == "F":
        values = values.T
    values = np.ascontiguousarray(values)
    if opaque:
        values = values.view(np.uint8).reshape(*values.shape, node.dtype.itemsize)
    return values


def _stored_selection(node: ArrayNode, region: tuple[slice, ...], opaque: bool) -> tuple[slice, ...]:
    selection = region[::-1] if node.order == "F" else region
    return (*selection, slice(None)) if opaque else selection


def _write_failure(exc: BaseException) -> OSError:
    """An h5py error met while writing, as the OSError it stands for (with its errno)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc
    found = re.search(r"errno = (\d+)", str(exc))
    code = int(found.group(1)) if found else errno.EIO
    return OSError(code, f"{os.strerror(code)} (HDF5: {str(exc).splitlines()[0][:200]})")


class _SpaceReservation:
    """Disk space reserved (``fallocate``, file size unchanged) before HDF5 writes into it.

    libhdf5 survives a failed write badly (a later close can crash the process), so a full disk
    must be met here, as an ``OSError``, before HDF5 writes a byte. Where ``fallocate`` is not
    supported, nothing is reserved.
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDWR)
        self._end = 0
        self.supported = _fallocate is not None

    def ensure(self, start: int, nbytes: int) -> None:
        """Reserve ``[start, start + nbytes + slack)``; ``OSError`` (ENOSPC) if the disk is full."""
        end = start + nbytes + RESERVE_SLACK_NBYTES
        if not self.supported or end <= self._end:
            return
        begin = max(self._end, start)
        assert _fallocate is not None
        if _fallocate(self._fd, _KEEP_SIZE, begin, end - begin) != 0:
            code = ctypes.get_errno()
            if code in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                self.supported = False
                return
            raise OSError(code, os.strerror(code))
        self._end = end

    def release(self) -> None:
        """Give back the reserved space beyond the file's end, and close."""
        if self._fd < 0:
            return
        try:
            size = os.fstat(self._fd).st_size
            if self.supported and self._end > size and _fallocate is not None:
                _fallocate(self._fd, _KEEP_SIZE | _PUNCH_HOLE, size, self._end - size)
        finally:
            os.close(self._fd)
            self._fd = -1


class Hdf5Writer(ContainerWriter):
    """Writes the HDF5 file aside, then renames it into place."""

    format_name: ClassVar[str] = "hdf5"

    def __init__(self, path: str, *, durable: bool = True) -> None:
        self.path = os.path.abspath(path)
        self.durable = durable
        clean_leftovers(self.path)
        self.staging = staging_path(self.path)
        self._file: Any = None
        self._space: _SpaceReservation | None = None
        try:
            self._file = h5py.File(self.staging, "w", track_order=True, libver=LIBVER)
            self._space = _SpaceReservation(self.staging)
        except BaseException as exc:
            self._discard()
            raise _write_failure(exc) if isinstance(exc, H5PY_ERRORS) else exc from exc

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except ZoblibError:
            raise
        except H5PY_ERRORS as exc:
            raise _write_failure(exc) from exc

    def _reserve(self, nbytes: int, start: int | None = None) -> None:
        assert self._space is not None
        self._space.ensure(int(self._file.id.get_filesize()) if start is None else start, nbytes)

    def write_array(self, node: ArrayNode, data: NodeData) -> list[int]:
        with self._writing():
            opaque = not _h5py_can_store(node.dtype)
            if _is_chunked(node):
                dataset = self._create_chunked(node, opaque)
                checksums = self._write_chunks(node, dataset, data, opaque)
            else:
                checksums = self._write_contiguous(node, data, opaque)
                dataset = self._file[node.path]
            if opaque:
                dataset.attrs[DTYPE_ATTRIBUTE] = json.dumps(dtype_to_json(node.dtype))
            return checksums

    def _create_chunked(self, node: ArrayNode, opaque: bool) -> Any:
        assert node.codec is not None
        return self._file.create_dataset(
            node.path,
            shape=_stored_shape(node, node.shape, opaque),
            dtype=np.dtype(np.uint8) if opaque else node.dtype,
            chunks=_stored_shape(node, node.chunk_shape, opaque),
            track_times=False,
            **hdf5_filter(node.codec),
        )

    def _write_chunks(self, node: ArrayNode, dataset: Any, data: NodeData, opaque: bool) -> list[int]:
        checksums: list[int] = []
        for index, pieces in data.encoded_chunks():
            parts = list(pieces)
            if node.checksum:  # the last piece is the payload's CRC-32C (the Zarr codec's)
                checksums.append(int.from_bytes(parts.pop(), "little"))
            payload = parts[0] if len(parts) == 1 else memoryview(b"".join(parts))
            self._reserve(len(payload))
            dataset.id.write_direct_chunk(_chunk_offsets(node, index, opaque), payload, filter_mask=0)
        return checksums

    def _write_contiguous(self, node: ArrayNode, data: NodeData, opaque: bool) -> list[int]:
        creation = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        creation.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        creation.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        self._reserve(node.nbytes)
        dataset = self._file.create_dataset(
            node.path,
            shape=_stored_shape(node, node.shape, opaque),
            dtype=np.dtype(np.uint8) if opaque else node.dtype,
            track_times=False,
            dcpl=creation,
        )
        offset = dataset.id.get_offset()
        if offset is not None:
            self._reserve(node.nbytes, int(offset))
        running = 0
        for region, values in data.blocks():
            stored = _stored_values(node, values, opaque)
            dataset[_stored_selection(node, region, opaque) if node.shape else ()] = stored
            running = checksum(byte_view(stored, "C"), running)  # the node's memory in its order
        if not node.checksum:
            return []
        dataset.attrs[CHECKSUM_ATTRIBUTE] = np.uint32(running)
        return [running] if node.chunk_count else []

    def write_root(self, attributes: Mapping[str, Any], groups: Iterable[str]) -> None:
        with self._writing():
            for name, value in attributes.items():
                self._file.attrs[name] = json.dumps(value, separators=(",", ":"))

    def commit(self) -> list[str]:
        with self._writing():
            self._reserve(0)
            self._file.flush()
            self._file.close()
        assert self._space is not None
        self._space.release()
        if self.durable:
            fd = os.open(self.staging, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        replace_file(self.staging, self.path, durable=self.durable)
        return [self.path]

    def abort(self) -> None:
        self._discard()

    def _discard(self) -> None:
        try:
            if self._file is not None:
                with contextlib.suppress(*H5PY_ERRORS):
                    self._file.close()
        finally:
            self._file = None
            if self._space is not None:
                self._space.release()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.staging)


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
        self._checked: dict[str, Any] = {}
        self._last_chunk: dict[str, tuple[tuple[int, ...], np.ndarray[Any, Any]]] = {}
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

    def _dataset(self, node: ArrayNode) -> Any:
        """The node's dataset, once it matches the node in every way the reader relies on."""
        dataset = self._checked.get(node.path)
        if dataset is None:
            with self._h5py(f"dataset {node.path!r} cannot be opened"):
                dataset = self._file.get(node.path)
                if not isinstance(dataset, h5py.Dataset):
                    raise ArchiveCorruptedError(
                        self.path, f"the archive has no dataset {node.path!r} (or HDF5 finds it damaged)"
                    )
                problem = self._mismatch(node, dataset)
            if problem is not None:
                raise ArchiveCorruptedError(
                    self.path, f"dataset {node.path!r} does not match the archive's record: {problem}"
                )
            self._checked[node.path] = dataset
        return dataset

    def _mismatch(self, node: ArrayNode, dataset: Any) -> str | None:
        opaque = DTYPE_ATTRIBUTE in dataset.attrs
        if opaque == _h5py_can_store(node.dtype):
            return "its datatype is stored in another form"
        shape = _stored_shape(node, node.shape, opaque)
        if tuple(dataset.shape) != shape:
            return f"shape {dataset.shape}, expected {shape}"
        expected_type = h5py.h5t.py_create(np.dtype(np.uint8) if opaque else node.dtype, logical=True)
        if dataset.id.get_type() != expected_type:
            return f"its HDF5 datatype is not the one of {node.dtype}"
        creation = dataset.id.get_create_plist()
        filters = [creation.get_filter(i)[0] for i in range(creation.get_nfilters())]
        if not _is_chunked(node):
            if creation.get_layout() != h5py.h5d.CONTIGUOUS or filters:
                return "it is not a contiguous dataset without filters"
            if node.nbytes and int(dataset.id.get_storage_size()) != node.nbytes:
                return f"it stores {dataset.id.get_storage_size()} bytes, expected {node.nbytes}"
            return None
        assert node.codec is not None
        chunks = _stored_shape(node, node.chunk_shape, opaque)
        if creation.get_layout() != h5py.h5d.CHUNKED or tuple(creation.get_chunk()) != chunks:
            return f"it is not chunked as {chunks}"
        expected = [FILTER_OF_CODEC.get(node.codec.codec_id, -1)]
        if node.chunk_checksums is None and (node.checksum or FLETCHER32_FILTER in filters):
            expected.append(FLETCHER32_FILTER)  # format version 1
        if filters != expected:
            return f"its filters are {filters}, expected {expected}"
        return None

    # ---- compressed nodes ------------------------------------------------------------------

    def read_chunk(self, node: ArrayNode, index: tuple[int, ...]) -> np.ndarray[Any, Any]:
        """One chunk, checked and decoded, of the full chunk shape (the last one is cached)."""
        cached = self._last_chunk.get(node.path)
        if cached is not None and cached[0] == index:
            return cached[1]
        dataset = self._dataset(node)
        offsets = _chunk_offsets(node, index, DTYPE_ATTRIBUTE in dataset.attrs)
        with self._h5py(f"the index of dataset {node.path!r} is damaged"):
            info = dataset.id.get_chunk_info_by_coord(offsets)
        where = f"chunk {index} of {node.path!r}"
        # Codec output is at most a little larger than the chunk (incompressible data).
        limit = node.chunk_nbytes + node.chunk_nbytes // 16 + (64 << 10)
        if info.byte_offset is None or info.size is None:
            raise ArchiveCorruptedError(self.path, f"{where} is missing")
        if not 0 < info.size <= limit or info.byte_offset + info.size > self._file_nbytes:
            raise ArchiveCorruptedError(self.path, f"{where}: the chunk index gives an impossible place")
        stored = bytearray(info.size)
        assert self._fd is not None, "reader is closed"
        read_exactly(self._fd, memoryview(stored), info.byte_offset, self.path)
        try:
            chunk = self._decode(node, index, stored, info.filter_mask)
        except ChecksumMismatch as exc:
            raise ChecksumError(self.path, f"{where} does not match its checksum: {exc}") from exc
        except (ValueError, RuntimeError, TypeError) as exc:
            raise ArchiveCorruptedError(self.path, f"{where} cannot be decoded: {exc}") from exc
        self._last_chunk[node.path] = (index, chunk)
        return chunk

    def _decode(
        self, node: ArrayNode, index: tuple[int, ...], stored: bytearray, mask: int
    ) -> np.ndarray[Any, Any]:
        if node.chunk_checksums is not None or not node.checksum:
            if mask != 0:
                raise ValueError(f"its filter mask is {mask}; zoblib writes 0")
            if node.chunk_checksums is not None:
                computed = checksum(stored)
                expected = node.expected_checksum(index)
                if computed != expected:
                    raise ChecksumMismatch(
                        "its CRC-32C is not the one the root record holds for this place "
                        "(damaged, or chunks swapped, copied or replaced)"
                    )
            return decode_stored(node, stored)
        # Format version 1: the codec's filter (which HDF5 skipped if it failed), then Fletcher-32.
        if mask & ~1:
            raise ValueError(f"its filter mask is {mask}: the Fletcher-32 filter was skipped")
        return decode_stored(node, split_fletcher32(stored), raw=bool(mask & 1))

    # ---- reading ---------------------------------------------------------------------------

    def read_region(
        self, node: ArrayNode, selection: tuple[slice, ...], out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        if _is_chunked(node):
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
        where = self.raw_location(node)
        if where is None or offset + len(out) > where.nbytes:
            raise ArchiveCorruptedError(self.path, f"dataset {node.path!r} is not stored as expected")
        assert self._fd is not None, "reader is closed"
        read_exactly(self._fd, out, where.offset + offset, self.path)

    def raw_checksum(self, node: ArrayNode) -> int | None:
        with self._h5py(f"the attributes of {node.path!r} cannot be read"):
            stored = self._dataset(node).attrs.get(CHECKSUM_ATTRIBUTE)
            return None if stored is None else int(stored)

    def raw_location(self, node: ArrayNode) -> ByteRange | None:
        dataset = self._dataset(node)
        if _is_chunked(node):
            return None
        with self._h5py(f"dataset {node.path!r} cannot be located"):
            offset = dataset.id.get_offset()
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
        self._last_chunk.clear()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
