"""The HDF5 container (``.h5``/``.hdf5``): one dataset per node, readable by h5py and HDF5 tools.

- The root record is the root group's attribute ``zoblib``, as JSON text.
- An uncompressed node is a contiguous dataset (memory-mappable at its offset) whose attribute
  ``crc32c`` is the CRC-32C of its value bytes.
- A compressed node is a chunked dataset with the HDF5 filter of its codec (deflate, or
  hdf5plugin's Blosc, Zstd, BZip2, LZ4) and HDF5's Fletcher-32 checksum filter; HDF5 checks it.
- A Fortran-ordered node is stored transposed (its dataset's shape is reversed).
- Types HDF5 cannot hold (unicode, datetime64, some structured types) are stored as opaque bytes:
  an extra last axis of ``itemsize`` uint8 (attribute ``zoblib_dtype`` names the numpy type).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import h5py
import numcodecs
import numpy as np
from numcodecs.abc import Codec

from zoblib.archive.chunks import byte_view
from zoblib.archive.containers.base import ByteRange, ContainerReader, ContainerWriter, NodeData, read_exactly
from zoblib.archive.containers.staging import clean_leftovers, replace_file, staging_path
from zoblib.archive.dtypes import dtype_to_json
from zoblib.archive.integrity import checksum
from zoblib.archive.nodes import ArrayNode
from zoblib.errors import ArchiveCorruptedError, ArchiveError, ChecksumError, CompressionError, ZoblibWarning

ROOT_ATTRIBUTE = "zoblib"
CHECKSUM_ATTRIBUTE = "crc32c"
DTYPE_ATTRIBUTE = "zoblib_dtype"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: str) -> bool:
    """Whether ``path`` is an HDF5 file (signature at 0 or at a user-block boundary)."""
    try:
        return bool(h5py.is_hdf5(path))
    except (OSError, ValueError):
        return False


def hdf5_filter(codec: Codec) -> dict[str, Any]:
    """The ``create_dataset`` keywords of the HDF5 filter equivalent to a numcodecs codec.

    Raises
    ------
    CompressionError
        For a codec with no HDF5 filter.
    """
    import hdf5plugin

    config = codec.get_config()
    codec_id = config["id"]
    if codec_id == "blosc":
        return dict(
            hdf5plugin.Blosc(cname=config["cname"], clevel=config["clevel"], shuffle=config["shuffle"])
        )
    if codec_id == "zstd":
        return dict(hdf5plugin.Zstd(clevel=config["level"]))
    if codec_id in ("zlib", "gzip"):
        return {"compression": "gzip", "compression_opts": config["level"]}
    if codec_id == "bz2":
        return dict(hdf5plugin.BZip2(blocksize=max(1, min(config["level"], 9))))
    if codec_id == "lz4":
        return dict(hdf5plugin.LZ4())
    raise CompressionError(
        f"codec {codec_id!r} has no HDF5 filter; with HDF5 use blosc, zstd, gzip, zlib, bz2 or lz4"
    )


def hdf5_codec(codec: Codec | None, path: str) -> Codec | None:
    """``codec``, or the closest one with an HDF5 filter (with a warning naming the change)."""
    if codec is None:
        return None
    try:
        hdf5_filter(codec)
    except CompressionError:
        level = int(codec.get_config().get("preset", codec.get_config().get("level", 6)) or 6)
        replacement = numcodecs.Zlib(level=max(1, min(level, 9)))
        warnings.warn(
            f"{path!r}: codec {codec.codec_id!r} has no HDF5 filter; compressing with gzip level "
            f"{replacement.level} instead",
            ZoblibWarning,
            stacklevel=4,
        )
        return replacement
    return codec


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


def _stored_shape(node: ArrayNode, opaque: bool) -> tuple[int, ...]:
    shape = node.shape[::-1] if node.order == "F" else node.shape
    return (*shape, node.dtype.itemsize) if opaque else shape


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


class Hdf5Writer(ContainerWriter):
    """Writes the HDF5 file aside, then renames it into place."""

    format_name: ClassVar[str] = "hdf5"

    def __init__(self, path: str, *, durable: bool = True) -> None:
        self.path = os.path.abspath(path)
        self.durable = durable
        clean_leftovers(self.path)
        self.staging = staging_path(self.path)
        self._file = h5py.File(self.staging, "w", track_order=True)

    def write_array(self, node: ArrayNode, data: NodeData) -> list[int]:
        opaque = not _h5py_can_store(node.dtype)
        storage_dtype = np.dtype(np.uint8) if opaque else node.dtype
        shape = _stored_shape(node, opaque)
        compressed = node.codec is not None and bool(node.shape) and 0 not in node.shape
        options: dict[str, Any] = {"track_times": False}
        if compressed:
            assert node.codec is not None
            chunks = _stored_shape(
                ArrayNode(node.path, node.dtype, node.chunk_shape, node.chunk_shape, node.order), opaque
            )
            options.update(chunks=chunks, fletcher32=True, **hdf5_filter(node.codec))
        else:
            space = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            space.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            space.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
            options["dcpl"] = space
        dataset = self._file.create_dataset(node.path, shape=shape, dtype=storage_dtype, **options)
        running = 0
        for region, values in data.blocks():
            stored = _stored_values(node, values, opaque)
            dataset[_stored_selection(node, region, opaque)] = stored
            if not compressed:  # the stored bytes are the node's memory in its order
                running = checksum(byte_view(stored, "C"), running)
        if opaque:
            dataset.attrs[DTYPE_ATTRIBUTE] = json.dumps(dtype_to_json(node.dtype))
        if not compressed and node.checksum:
            dataset.attrs[CHECKSUM_ATTRIBUTE] = np.uint32(running)
            return [running] if node.chunk_count else []
        return []

    def write_root(self, attributes: Mapping[str, Any], groups: Iterable[str]) -> None:
        for name, value in attributes.items():
            self._file.attrs[name] = json.dumps(value, separators=(",", ":"))

    def commit(self) -> list[str]:
        self._file.flush()
        self._file.close()
        if self.durable:
            fd = os.open(self.staging, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        replace_file(self.staging, self.path, durable=self.durable)
        return [self.path]

    def abort(self) -> None:
        try:
            self._file.close()
        finally:
            if os.path.exists(self.staging):
                os.unlink(self.staging)


class Hdf5Reader(ContainerReader):
    """Reads an HDF5 archive through h5py (raw bytes of contiguous datasets with ``pread``)."""

    format_name: ClassVar[str] = "hdf5"
    supports_memmap: ClassVar[bool] = True

    def __init__(self, path: str) -> None:
        super().__init__(path)
        try:
            self._file = h5py.File(path, "r")
        except OSError as exc:
            raise ArchiveCorruptedError(path, f"the HDF5 file cannot be opened: {exc}") from exc
        self._fd: int | None = os.open(path, os.O_RDONLY)

    def root_attributes(self) -> dict[str, Any]:
        text = self._file.attrs.get(ROOT_ATTRIBUTE)
        if text is None:
            raise ArchiveError(self.path, "not a zoblib archive: the HDF5 root has no 'zoblib' attribute")
        try:
            return {name: json.loads(value) for name, value in self._file.attrs.items()}
        except (TypeError, ValueError) as exc:
            raise ArchiveCorruptedError(self.path, f"the root record is not valid JSON: {exc}") from exc

    def _dataset(self, node: ArrayNode) -> Any:
        try:
            return self._file[node.path]
        except KeyError as exc:
            raise ArchiveCorruptedError(self.path, f"the archive has no dataset {node.path!r}") from exc

    def read_region(
        self, node: ArrayNode, selection: tuple[slice, ...], out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        dataset = self._dataset(node)
        opaque = DTYPE_ATTRIBUTE in dataset.attrs
        try:
            stored = dataset[_stored_selection(node, selection, opaque)] if node.shape else dataset[()]
        except OSError as exc:
            if "checksum" in str(exc).lower():
                raise ChecksumError(self.path, f"dataset {node.path!r} does not match its checksum") from exc
            raise ArchiveCorruptedError(self.path, f"dataset {node.path!r} cannot be read: {exc}") from exc
        values = np.asarray(stored)
        if opaque:
            values = np.ascontiguousarray(values).view(node.dtype)[..., 0]
        if node.order == "F":
            values = values.T
        if out is None:
            # A view drops the metadata h5py attaches to some dtypes (string encodings).
            return values.view(node.dtype) if values.dtype == node.dtype else values.astype(node.dtype)
        out[...] = values
        return out

    def read_raw_into(self, node: ArrayNode, out: memoryview, offset: int) -> None:
        where = self.raw_location(node)
        if where is None or offset + len(out) > where.nbytes:
            raise ArchiveCorruptedError(self.path, f"dataset {node.path!r} is not stored as expected")
        assert self._fd is not None, "reader is closed"
        read_exactly(self._fd, out, where.offset + offset, self.path)

    def raw_checksum(self, node: ArrayNode) -> int | None:
        stored = self._dataset(node).attrs.get(CHECKSUM_ATTRIBUTE)
        return None if stored is None else int(stored)

    def raw_location(self, node: ArrayNode) -> ByteRange | None:
        dataset = self._dataset(node)
        offset = dataset.id.get_offset()
        if offset is None or dataset.chunks is not None:
            return None
        return ByteRange(self.path, int(offset), int(dataset.id.get_storage_size()))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._file.close()

    def __del__(self) -> None:
        self.close()
