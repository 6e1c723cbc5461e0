"""Rewrite a fresh HDF5 archive in the first layout of format version 2 (no ``hdf5_layout``).

zoblib now writes HDF5's logical layout only; archives written before it keep loading, and
tests make such archives with ``rewrite_in_first_layout``, built with h5py and numcodecs (chunks
written as that zoblib did, with ``write_direct_chunk``), not with zoblib's writer:
Fortran-ordered datasets transposed, types h5py cannot store as uint8 with one more axis of
``itemsize`` and the attribute ``zoblib_dtype``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import crc32c
import h5py
import numpy as np

from zoblib.archive.compression import codec_from_zarr
from zoblib.archive.containers.hdf5_chunks import hdf5_filter
from zoblib.archive.containers.hdf5_layout import h5py_can_store
from zoblib.archive.dtypes import dtype_from_json
from zoblib.archive.integrity import record_checksum


def rewrite_in_first_layout(path: Path, keep_markers: bool = False) -> None:
    """Rewrite every dataset of ``path`` as the first layout stores it (chunk checksums
    recomputed); with ``keep_markers`` the record still claims the logical layout."""
    with h5py.File(path, "r+") as file:
        record = json.loads(file.attrs["zoblib"])
        for name, entry in record["nodes"].items():
            if not keep_markers:
                entry.pop("hdf5_layout")
            _rewrite(file, name, entry)
        file.attrs["zoblib"] = json.dumps(record)
        file.attrs["zoblib_crc32c"] = json.dumps(record_checksum(record))


def _rewrite(file: h5py.File, name: str, entry: dict[str, Any]) -> None:
    dataset = file[name]
    dtype = dtype_from_json(entry["dtype"])
    values = np.asarray(dataset[()])
    if values.dtype != dtype:
        values = values.view(dtype)  # opaque void bytes of a structured type
    attrs = {k: v for k, v in dataset.attrs.items() if k not in ("zoblib_layout", "zoblib_dtype")}
    opaque = not h5py_can_store(dtype)
    fortran = entry["order"] == "F" and values.ndim > 1
    stored = np.ascontiguousarray(values.T if fortran else values)
    if opaque:
        stored = stored.view(np.uint8).reshape(*stored.shape, dtype.itemsize)
    shape, chunk_shape = tuple(entry["shape"]), tuple(entry["chunk_shape"])
    compressed = entry["codec"] is not None and bool(shape) and 0 not in shape
    del file[name]
    if not compressed:  # contiguous; its checksum (the node's memory in its order) stays
        new = file.create_dataset(name, data=stored, track_times=False)
    else:
        codec = codec_from_zarr(entry["codec"])
        chunks = chunk_shape[::-1] if fortran else chunk_shape
        chunks = (*chunks, dtype.itemsize) if opaque else chunks
        new = file.create_dataset(
            name,
            shape=stored.shape,
            dtype=stored.dtype,
            chunks=chunks,
            track_times=False,
            **hdf5_filter(codec),
        )
        listed = []
        grid = [math.ceil(n / c) for n, c in zip(shape, chunk_shape, strict=True)]
        for index in np.ndindex(*grid):  # zoblib wrote each chunk itself, filter mask 0
            start = tuple(i * c for i, c in zip(index, chunk_shape, strict=True))
            start = start[::-1] if fortran else start
            start = (*start, 0) if opaque else start
            region = tuple(
                slice(o, min(o + c, n)) for o, c, n in zip(start, chunks, stored.shape, strict=True)
            )
            block = np.zeros(chunks, dtype=stored.dtype)
            block[tuple(slice(0, r.stop - r.start) for r in region)] = stored[region]
            payload = bytes(codec.encode(np.ascontiguousarray(block)))
            new.id.write_direct_chunk(start, payload, filter_mask=0)
            listed.append(f"{crc32c.crc32c(payload):08x}")
        if entry["checksum"] == "crc32c":
            entry["chunk_crc32c"] = "".join(listed)
    new.attrs.update(attrs)
    if opaque:
        new.attrs["zoblib_dtype"] = json.dumps(entry["dtype"])
