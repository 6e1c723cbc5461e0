"""Writing an HDF5 archive in the logical layout (``hdf5_layout``), aside, then renamed into place.

Chunks go in with ``write_direct_chunk`` as zoblib encoded them, never through HDF5's filter
pipeline; uncompressed C-ordered nodes are contiguous datasets, allocated early so that they
can be memory-mapped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import h5py
import numpy as np

from zoblib.archive.chunks import byte_view, codec_view_dtype, encode_in_threads
from zoblib.archive.containers.base import ContainerWriter, NodeData
from zoblib.archive.containers.hdf5_chunks import hdf5_filter
from zoblib.archive.containers.hdf5_fortran import (
    ByteStream,
    band_chunks,
    bands_from_f_stream,
    c_order_chunks,
)
from zoblib.archive.containers.hdf5_layout import (
    BANDS,
    CHECKSUM_ATTRIBUTE,
    COMPRESSED,
    DTYPE_ATTRIBUTE,
    H5PY_ERRORS,
    LAYOUT_ATTRIBUTE,
    LOGICAL,
    DatasetForm,
    dataset_form,
    file_values,
)
from zoblib.archive.containers.staging import (
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    clean_leftovers,
    fallocate,
    replace_file,
    staging_path,
)
from zoblib.archive.dtypes import dtype_to_json
from zoblib.archive.integrity import checksum
from zoblib.archive.nodes import ArrayNode
from zoblib.errors import ZoblibError

#: HDF5 1.10's file format: checksummed metadata (readable by HDF5 1.10 and later).
LIBVER = ("v110", "latest")
#: Disk space reserved beyond what a write needs, for HDF5's metadata (flushed at close).
RESERVE_SLACK_NBYTES = 1 << 20


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
        self.supported = True  # until fallocate says otherwise

    def ensure(self, start: int, nbytes: int) -> None:
        """Reserve ``[start, start + nbytes + slack)``; ``OSError`` (ENOSPC) if the disk is full."""
        end = start + nbytes + RESERVE_SLACK_NBYTES
        if not self.supported or end <= self._end:
            return
        begin = max(self._end, start)
        code = fallocate(self._fd, FALLOC_FL_KEEP_SIZE, begin, end - begin)
        if code != 0:
            if code in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                self.supported = False
                return
            raise OSError(code, os.strerror(code))
        self._end = end

    def write(self, data: memoryview, offset: int) -> None:
        """Write ``data`` at ``offset`` of the file (raw data HDF5 allocated and leaves alone)."""
        done = 0
        while done < len(data):
            done += os.pwrite(self._fd, data[done:], offset + done)

    def release(self) -> None:
        """Give back the reserved space beyond the file's end, and close."""
        if self._fd < 0:
            return
        try:
            size = os.fstat(self._fd).st_size
            if self.supported and self._end > size:
                fallocate(self._fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, size, self._end - size)
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

    def stored_node(self, node: ArrayNode) -> ArrayNode:
        return dataclasses.replace(node, hdf5_layout=LOGICAL)

    def write_array(self, node: ArrayNode, data: NodeData) -> list[int]:
        if node.hdf5_layout != LOGICAL:
            raise ValueError(f"{node.path}: HDF5 archives are written in the logical layout (use store_node)")
        form = dataset_form(node)
        with self._writing():
            if form.storage == COMPRESSED:
                assert node.codec is not None
                dataset = self._create(node, form, chunks=form.chunks, **hdf5_filter(node.codec))
                checksums = self._write_compressed(node, dataset, data)
            elif form.storage == BANDS:
                dataset = self._create(node, form, chunks=band_chunks(node))
                checksums = self._write_bands(node, dataset, data)
            else:
                dataset, checksums = self._write_contiguous(node, form, data)
            dataset.attrs[LAYOUT_ATTRIBUTE] = LOGICAL
            if form.dtype_attribute:
                dataset.attrs[DTYPE_ATTRIBUTE] = json.dumps(dtype_to_json(node.dtype))
            return checksums

    def _create(self, node: ArrayNode, form: DatasetForm, **options: Any) -> Any:
        return self._file.create_dataset(
            node.path, shape=form.shape, dtype=form.file_dtype, track_times=False, **options
        )

    def _write_compressed(self, node: ArrayNode, dataset: Any, data: NodeData) -> list[int]:
        encoded: Iterable[tuple[tuple[int, ...], Iterable[memoryview]]]
        if node.order == "F" and len(node.shape) > 1:
            # HDF5 chunks hold C order: each chunk is made C-contiguous, then encoded.
            view = codec_view_dtype(node.dtype)
            chunks = ((i, byte_view(c, "C").view(view)) for i, c in c_order_chunks(node, data.blocks()))
            encoded = encode_in_threads(node, chunks)
        else:
            encoded = data.encoded_chunks()  # a Zarr chunk's payload is HDF5's
        by_number: dict[int, int] = {}
        for index, pieces in encoded:
            parts = list(pieces)
            if node.checksum:  # the last piece is the payload's CRC-32C (the Zarr codec's)
                by_number[node.chunk_number(index)] = int.from_bytes(parts.pop(), "little")
            payload = parts[0] if len(parts) == 1 else memoryview(b"".join(parts))
            self._reserve(len(payload))
            start = tuple(i * c for i, c in zip(index, node.chunk_shape, strict=True))
            dataset.id.write_direct_chunk(start, payload, filter_mask=0)
        return [by_number[number] for number in sorted(by_number)]

    def _write_bands(self, node: ArrayNode, dataset: Any, data: NodeData) -> list[int]:
        # The node's one Zarr chunk is its F-order bytes (then their CRC-32C): cut into bands.
        assert node.is_single_chunk, "an uncompressed node is one chunk"
        checksums: list[int] = []
        for _, pieces in data.encoded_chunks():
            stream = ByteStream(pieces)
            for origin, chunk in bands_from_f_stream(node, tuple(dataset.chunks), stream):
                payload = byte_view(chunk, "C").data
                self._reserve(len(payload))
                dataset.id.write_direct_chunk(origin, payload, filter_mask=0)
            if node.checksum:
                checksums.append(int.from_bytes(stream.rest(), "little"))
                dataset.attrs[CHECKSUM_ATTRIBUTE] = np.uint32(checksums[-1])
        return checksums

    def _write_contiguous(self, node: ArrayNode, form: DatasetForm, data: NodeData) -> tuple[Any, list[int]]:
        creation = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        creation.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        creation.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        self._reserve(node.nbytes)
        dataset = self._create(node, form, dcpl=creation)
        offset = dataset.id.get_offset()
        if offset is not None:
            self._reserve(node.nbytes, int(offset))
        if node.codec is None:
            running = self._write_raw(node, form, dataset, None if offset is None else int(offset), data)
        else:  # a 0-d or empty node with a codec: its values, not its (encoded) chunk
            running = 0
            for region, values in data.blocks():
                stored = file_values(form, values)
                dataset[region if node.shape else ()] = stored
                running = checksum(byte_view(stored, "C"), running)
        if not node.checksum:
            return dataset, []
        dataset.attrs[CHECKSUM_ATTRIBUTE] = np.uint32(running)
        return dataset, [running] if node.chunk_count else []

    def _write_raw(
        self, node: ArrayNode, form: DatasetForm, dataset: Any, offset: int | None, data: NodeData
    ) -> int:
        """Write the node's one chunk (its memory, C order here) at the dataset's ``offset``
        ourselves, as the reader reads it: HDF5 never touches the raw data of a contiguous
        dataset allocated early and never filled. Returns the chunk's CRC-32C.

        HDF5 allocates a 0-d dataset only when it is written (no ``offset``): its one element
        goes through h5py.
        """
        assert self._space is not None
        trailing = bytearray()
        element = bytearray()
        for _, pieces in data.encoded_chunks():
            written = 0
            for piece in pieces:
                view = memoryview(piece).cast("B")
                take = min(len(view), node.nbytes - written)
                if offset is None:
                    element += view[:take]
                elif take:
                    self._space.write(view[:take], offset + written)
                written += take
                trailing += view[take:]  # the CRC-32C the pieces end with
            if written != node.nbytes:
                raise RuntimeError(f"{node.path}: {written} bytes written, expected {node.nbytes}")
        if element:
            values = np.frombuffer(bytes(element), dtype=node.dtype).reshape(node.shape)
            dataset[...] = file_values(form, values)
        return int.from_bytes(trailing, "little") if node.checksum and trailing else 0

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
