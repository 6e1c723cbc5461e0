"""How one stored array is described: :class:`ArrayNode`, and its Zarr v3 ``zarr.json``.

An archive stores three kinds of arrays, all as Zarr v3 arrays on a regular chunk grid:
extracted arrays (``arrays/<i>``), packs of mid-size arrays (``packs/<i>``, one dimension) and
the pickle skeleton (``skeleton``, bytes). Chunks hold the array's memory in ``order`` ('C', or
'F' through Zarr's ``transpose`` codec), in the dtype's own byte order, then the compressor.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numcodecs.abc import Codec

from zoblib.archive.compression import codec_from_zarr, codec_to_zarr
from zoblib.archive.dtypes import dtype_from_json, dtype_to_json, zarr_data_type
from zoblib.archive.integrity import CHECKSUM_NBYTES
from zoblib.archive.integrity import ZARR_CODEC as CHECKSUM_CODEC

#: Target size of one compressed chunk: a few MiB keeps memory flat and codecs fast.
DEFAULT_CHUNK_NBYTES = 4 << 20
#: The node entry key listing every chunk's checksum (format version 2).
CHUNK_CHECKSUMS_KEY = "chunk_crc32c"
#: The node entry key naming how an HDF5 archive lays the node out (format version 2; absent
#: in the first HDF5 layout, see ``containers.hdf5_layout``).
HDF5_LAYOUT_KEY = "hdf5_layout"


@dataclass(frozen=True)
class ArrayNode:
    """One Zarr array of an archive: where it is, its type, layout and codec."""

    path: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    order: str = "C"
    codec: Codec | None = None
    #: Whether every chunk ends with a CRC-32C (Zarr's ``crc32c`` codec).
    checksum: bool = True
    attributes: Mapping[str, Any] = field(default_factory=dict)
    #: The CRC-32C of every chunk's payload, in grid order (format version 2; ``None`` when
    #: unknown, as in version 1 archives). It ties each chunk to its place: a chunk copied over
    #: another, or two chunks swapped, carry valid checksums of their own but not these.
    chunk_checksums: tuple[int, ...] | None = None
    #: How the HDF5 container stores the node (``"logical"``); ``None`` in other containers and
    #: in HDF5 archives of the first layout (transposed and opaque bytes).
    hdf5_layout: str | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def chunk_nbytes(self) -> int:
        return math.prod(self.chunk_shape) * self.dtype.itemsize

    @property
    def stored_raw_nbytes(self) -> int:
        """Stored size of an uncompressed chunk: its data, then its checksum."""
        return self.chunk_nbytes + (CHECKSUM_NBYTES if self.checksum else 0)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(-(-n // c) for n, c in zip(self.shape, self.chunk_shape, strict=True))

    @property
    def is_single_chunk(self) -> bool:
        return self.shape == self.chunk_shape or math.prod(self.grid_shape) <= 1

    def chunk_indices(self) -> Iterator[tuple[int, ...]]:
        """Every chunk's grid index, in storage order (C order of the grid)."""
        if math.prod(self.shape) == 0:
            return iter(())
        return iter(np.ndindex(*self.grid_shape))

    @property
    def chunk_count(self) -> int:
        return 0 if math.prod(self.shape) == 0 else math.prod(self.grid_shape)

    def chunk_number(self, index: tuple[int, ...]) -> int:
        """The position of chunk ``index`` in the grid's C order (as in ``chunk_checksums``)."""
        number = 0
        for i, n in zip(index, self.grid_shape, strict=True):
            number = number * n + i
        return number

    def expected_checksum(self, index: tuple[int, ...]) -> int | None:
        """The checksum the root record holds for chunk ``index``, if it holds one."""
        if self.chunk_checksums is None:
            return None
        return self.chunk_checksums[self.chunk_number(index)]

    def chunk_key(self, index: tuple[int, ...]) -> str:
        """The store key of a chunk, with Zarr's default encoding ('c/0/1')."""
        return "/".join((self.path, "c", *map(str, index)))

    # ---- manifest entries (what zoblib reads) -------------------------------------------------

    def to_manifest(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "dtype": dtype_to_json(self.dtype),
            "shape": list(self.shape),
            "chunk_shape": list(self.chunk_shape),
            "order": self.order,
            "codec": None if self.codec is None else codec_to_zarr(self.codec, self.dtype.itemsize),
            "checksum": "crc32c" if self.checksum else None,
        }
        if self.chunk_checksums is not None:
            entry[CHUNK_CHECKSUMS_KEY] = "".join(f"{value:08x}" for value in self.chunk_checksums)
        if self.hdf5_layout is not None:
            entry[HDF5_LAYOUT_KEY] = self.hdf5_layout
        return entry

    @classmethod
    def from_manifest(cls, path: str, entry: Mapping[str, Any]) -> ArrayNode:
        """The node a manifest entry describes; ``ValueError`` if it is malformed."""
        codec_spec = entry["codec"]
        shape = tuple(entry["shape"])
        chunk_shape = tuple(entry["chunk_shape"])
        if not all(isinstance(n, int) and n >= 0 for n in shape) or len(chunk_shape) != len(shape):
            raise ValueError(f"node {path!r}: invalid shape {shape!r} or chunk shape {chunk_shape!r}")
        if not all(isinstance(n, int) and n >= 1 for n in chunk_shape) or entry["order"] not in ("C", "F"):
            raise ValueError(f"node {path!r}: invalid chunk shape {chunk_shape!r} or order")
        if codec_spec is not None and not isinstance(codec_spec, dict):
            raise ValueError(f"node {path!r}: invalid codec {codec_spec!r}")
        node = cls(
            path=path,
            dtype=dtype_from_json(entry["dtype"]),
            shape=shape,
            chunk_shape=chunk_shape,
            order=str(entry["order"]),
            codec=None if codec_spec is None else codec_from_zarr(codec_spec),
            checksum=entry.get("checksum") == "crc32c",
            hdf5_layout=_optional_string(entry, HDF5_LAYOUT_KEY, path),
        )
        listed = entry.get(CHUNK_CHECKSUMS_KEY)
        if listed is None:
            return node
        if not node.checksum or not isinstance(listed, str) or len(listed) != 8 * node.chunk_count:
            raise ValueError(f"node {path!r}: {CHUNK_CHECKSUMS_KEY} does not list one checksum per chunk")
        try:
            values = tuple(int(listed[i : i + 8], 16) for i in range(0, len(listed), 8))
        except ValueError:
            raise ValueError(f"node {path!r}: {CHUNK_CHECKSUMS_KEY} is not hexadecimal") from None
        return dataclasses.replace(node, chunk_checksums=values)

    # ---- zarr.json (what other readers see) ------------------------------------------------

    def zarr_metadata(self) -> dict[str, Any]:
        """The node's Zarr v3 ``zarr.json`` document."""
        data_type, fill_value, endian = zarr_data_type(self.dtype)
        codecs: list[dict[str, Any]] = []
        if self.order == "F" and len(self.shape) > 1:
            reverse = list(range(len(self.shape) - 1, -1, -1))
            codecs.append({"name": "transpose", "configuration": {"order": reverse}})
        codecs.append({"name": "bytes", "configuration": {"endian": endian}} if endian else {"name": "bytes"})
        if self.codec is not None:
            codecs.append(codec_to_zarr(self.codec, self.dtype.itemsize))
        if self.checksum:
            codecs.append(dict(CHECKSUM_CODEC))
        attributes = {"zoblib": {"dtype": dtype_to_json(self.dtype), **self.attributes}}
        return {
            "zarr_format": 3,
            "node_type": "array",
            "shape": list(self.shape),
            "data_type": data_type,
            "chunk_grid": {
                "name": "regular",
                "configuration": {"chunk_shape": [max(c, 1) for c in self.chunk_shape]},
            },
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": fill_value,
            "codecs": codecs,
            "attributes": attributes,
        }


def _optional_string(entry: Mapping[str, Any], key: str, path: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"node {path!r}: {key} is not a string")
    return value


def group_metadata(attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A Zarr v3 group's ``zarr.json`` document."""
    return {"zarr_format": 3, "node_type": "group", "attributes": dict(attributes or {})}


def choose_chunk_shape(
    shape: tuple[int, ...], itemsize: int, order: str, target_nbytes: int | None
) -> tuple[int, ...]:
    """A chunk shape of about ``target_nbytes`` (``None``: one chunk for the whole array).

    Chunks take whole rows along the fastest-varying axes (the last ones in C order, the first
    ones in F order), so most chunks are contiguous slabs of the array's memory.
    """
    whole = tuple(max(n, 1) for n in shape)
    if target_nbytes is None or not shape:
        return whole
    axes = range(len(shape) - 1, -1, -1) if order == "C" else range(len(shape))
    chunk = list(whole)
    budget = max(target_nbytes // max(itemsize, 1), 1)
    for axis in axes:
        if budget >= whole[axis]:
            budget //= whole[axis]
            continue
        chunk[axis] = max(budget, 1)
        rest = [a for a in axes if (a < axis if order == "C" else a > axis)]
        for other in rest:
            chunk[other] = 1
        break
    return tuple(chunk)
