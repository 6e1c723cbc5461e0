"""An independent reader of zoblib archives, written from ``format_spec/v2.md`` and ``v1.md`` alone.

It proves the spec is enough to read an archive: nothing here imports zoblib (a test checks it).
Section numbers in comments are those of ``format_spec/v2.md`` unless marked ``v1``.

    value = load("model.pkl")
"""

from __future__ import annotations

import bz2
import contextlib
import io
import json
import lzma
import math
import os
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Any

import crc32c
import h5py
import numcodecs
import numpy as np
import xxhash

READ_VERSIONS = (1, 2)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_LOCAL_HEADER = b"PK\x03\x04"
SKELETON_MODULE = "zoblib.archive.skeleton"


class SpecReaderError(ValueError):
    """The archive breaks the spec (damage, or something this reader does not read)."""


# -- strict JSON (section 3) ----------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise SpecReaderError(f"non-strict JSON constant {name} in an archive document")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 leaves duplicate names undefined; which copy wins is tool-specific, so refuse.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise SpecReaderError("duplicate key in an archive JSON document")
    return result


def parse_json(text: str | bytes) -> Any:
    """Parse one archive JSON document strictly (no NaN/Infinity, no duplicate keys)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicates)


def canonical_json(record: Any) -> bytes:
    """Section 3: the bytes the root record's CRC-32C is computed over."""
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


# -- containers (section 2) -----------------------------------------------------------------


class DirectoryContainer:
    """Section 2.1: each store key is a file at that relative path."""

    kind = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> bytes | None:
        path = self.root.joinpath(*key.split("/"))
        return path.read_bytes() if path.is_file() else None

    def close(self) -> None:
        pass


class ZipContainer:
    """Section 2.2: a ZIP of stored members named by the store keys."""

    kind = "zip"

    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path)
        names = self.zip.namelist()
        if len(set(names)) != len(names):
            raise SpecReaderError(f"{path}: a ZIP member name occurs more than once")
        for info in self.zip.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise SpecReaderError(f"{path}: member {info.filename} is not stored (method 0)")

    def get(self, key: str) -> bytes | None:
        try:
            return self.zip.read(key)
        except KeyError:
            return None

    def close(self) -> None:
        self.zip.close()


def hdf5_signature_offset(path: Path) -> int | None:
    """Section 2.3: the HDF5 signature at 0 or at a user-block boundary 512, 1024, 2048, ..."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            file.seek(offset)
            if file.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return offset
            offset = 512 if offset == 0 else offset * 2
    return None


def detect_container(path: Path) -> str:
    """Section 2: from what is on disk, never from the name."""
    if path.is_dir():
        return "directory"
    with open(path, "rb") as file:
        head = file.read(4)
    if head == ZIP_LOCAL_HEADER:
        return "zip"
    if hdf5_signature_offset(path) is not None:
        return "hdf5"
    raise SpecReaderError(f"{path}: neither a directory, a ZIP nor an HDF5 file")


# -- root record (section 3) ----------------------------------------------------------------


def check_format_version(record: Any) -> int:
    if not isinstance(record, dict):
        raise SpecReaderError("the root record is not a JSON object")
    version = record.get("format_version")
    if type(version) is not int or version < 1:
        raise SpecReaderError(f"damaged root record: format_version {version!r}")
    if version > max(READ_VERSIONS):
        raise SpecReaderError(
            f"format_version {version} is newer than this reader, which reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}"
        )
    return version


def check_record_crc(record: dict[str, Any], stated: Any) -> None:
    computed = f"{crc32c.crc32c(canonical_json(record)):08x}"
    if stated != computed:
        raise SpecReaderError(f"root record CRC-32C mismatch: stated {stated!r}, computed {computed}")


def _field_dtype(kind: Any, shape: Any = None) -> np.dtype:
    dtype = parse_dtype(kind)
    return dtype if shape is None else np.dtype((dtype, tuple(shape)))


def _descr_to_dtype(fields: list[Any]) -> np.dtype:
    """``numpy.lib.format.descr_to_dtype`` for JSON fields whose types may be wrapped dicts."""
    names, formats, titles, offsets = [], [], [], []
    offset = 0
    for field in fields:
        if not isinstance(field, list) or len(field) not in (2, 3):
            raise SpecReaderError(f"bad descr field {field!r}")
        name, dtype = field[0], _field_dtype(*field[1:])
        # numpy's padding entries: an unnamed plain void (numpy.lib.format's rule).
        if not (name == "" and dtype.type is np.void and dtype.names is None):
            title, name = name if isinstance(name, list) else (None, name)
            names.append(name)
            titles.append(title)
            formats.append(dtype)
            offsets.append(offset)
        offset += dtype.itemsize
    return np.dtype(
        {"names": names, "formats": formats, "titles": titles, "offsets": offsets, "itemsize": offset}
    )


def _dict_descr(spec: Any) -> np.dtype:
    # Section 3.1 does not say what the wrapped dict holds; numpy's dict form is the guess.
    if not isinstance(spec, dict):
        raise SpecReaderError(f"bad dict descr {spec!r}")
    spec = dict(spec)
    if "formats" in spec:
        spec["formats"] = [parse_dtype(item) for item in spec["formats"]]
    return np.dtype(spec)


def parse_dtype(value: Any) -> np.dtype:
    """Section 3.1 ``dtype``: ``dtype.str``, a descr list, or a wrapped dict-form descr."""
    if isinstance(value, str):
        return np.dtype(value)
    if isinstance(value, dict):
        if set(value) != {"__dict_descr__"}:
            raise SpecReaderError(f"unknown dtype object {value!r}")
        return _dict_descr(value["__dict_descr__"])
    if isinstance(value, list):
        return _descr_to_dtype(value)
    raise SpecReaderError(f"bad dtype {value!r}")


def _int_list(value: Any, what: str, minimum: int) -> tuple[int, ...]:
    if not isinstance(value, list) or any(type(item) is not int or item < minimum for item in value):
        raise SpecReaderError(f"bad {what} {value!r}")
    return tuple(value)


class Node:
    """Section 3.1: one node entry, parsed and checked."""

    def __init__(self, path: str, entry: Any, version: int) -> None:
        if not isinstance(entry, dict):
            raise SpecReaderError(f"node {path}: entry is not an object")
        parts = path.split("/")
        if not path or any(part in ("", ".", "..") for part in parts):
            raise SpecReaderError(f"bad node path {path!r}")
        self.path = path
        self.dtype = parse_dtype(entry["dtype"])
        self.dtype_json = entry["dtype"]
        self.shape = _int_list(entry["shape"], "shape", 0)
        self.chunk_shape = _int_list(entry["chunk_shape"], "chunk_shape", 1)
        if len(self.chunk_shape) != len(self.shape):
            raise SpecReaderError(f"node {path}: chunk_shape and shape differ in length")
        self.order = entry["order"]
        if self.order not in ("C", "F"):
            raise SpecReaderError(f"node {path}: bad order {self.order!r}")
        self.codec = entry["codec"]
        if self.codec is not None and not isinstance(self.codec, dict):
            raise SpecReaderError(f"node {path}: bad codec {self.codec!r}")
        self.checksum = entry["checksum"]
        if self.checksum not in ("crc32c", None):
            raise SpecReaderError(f"node {path}: bad checksum {self.checksum!r}")
        self.grid = tuple(
            math.ceil(size / chunk) for size, chunk in zip(self.shape, self.chunk_shape, strict=True)
        )
        self.nchunks = math.prod(self.grid) if all(self.shape) else 0
        self.chunk_crcs: list[int] | None = None
        # Section 2.3: how an HDF5 archive stores the node (absent: the first layout).
        self.hdf5_layout = entry.get("hdf5_layout")
        if self.hdf5_layout not in (None, "logical"):
            raise SpecReaderError(f"node {path}: unknown hdf5_layout {self.hdf5_layout!r}")
        if version >= 2:
            listed = entry.get("chunk_crc32c")
            if self.checksum == "crc32c":
                if not isinstance(listed, str) or len(listed) != 8 * self.nchunks:
                    raise SpecReaderError(f"node {path}: chunk_crc32c does not list every chunk")
                try:
                    self.chunk_crcs = [int(listed[i : i + 8], 16) for i in range(0, len(listed), 8)]
                except ValueError:
                    raise SpecReaderError(f"node {path}: chunk_crc32c is not hex") from None
            elif listed is not None:
                raise SpecReaderError(f"node {path}: chunk_crc32c without checksum")

    @property
    def chunk_nbytes(self) -> int:
        return math.prod(self.chunk_shape) * self.dtype.itemsize

    def chunk_indices(self) -> list[tuple[int, ...]]:
        """Every chunk of the grid in C order (section 3.1's order of ``chunk_crc32c``)."""
        if not self.nchunks:
            return []
        return [tuple(int(i) for i in index) for index in np.ndindex(*self.grid)]

    def listed_crc(self, index: tuple[int, ...]) -> int | None:
        if self.chunk_crcs is None:
            return None
        flat = int(np.ravel_multi_index(index, self.grid)) if index else 0
        return self.chunk_crcs[flat]


# -- codecs (section 7) ---------------------------------------------------------------------

_BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


def _stream_decompress(decompressor: Any, payload: bytes, size: int) -> bytes:
    out = decompressor.decompress(payload, size + 1)
    if len(out) != size or not decompressor.eof:
        raise SpecReaderError(f"chunk decodes to {len(out)}+ bytes, not {size}")
    return out


def decode(codec: dict[str, Any], payload: bytes, size: int, *, hdf5: bool = False) -> bytes:
    """Decode one chunk payload to exactly ``size`` bytes (section 5.2), refusing any other size."""
    name = codec["name"]
    config = codec.get("configuration", {})
    if name == "blosc":
        # The Blosc 1 header: nbytes at bytes 4-8 and cbytes at 12-16, little endian.
        nbytes = int.from_bytes(payload[4:8], "little")
        cbytes = int.from_bytes(payload[12:16], "little")
        if len(payload) < 16 or nbytes != size or cbytes != len(payload):
            raise SpecReaderError(f"blosc chunk claims {nbytes} bytes, not {size}")
        return bytes(numcodecs.Blosc(cname=config["cname"]).decode(payload))
    if name in ("zstd", "numcodecs.zstd"):
        # Bounded by ``out``: libzstd never writes past one chunk.
        out = numcodecs.Zstd().decode(payload, out=bytearray(size))
        if len(out) != size:
            raise SpecReaderError(f"zstd chunk decodes to {len(out)} bytes, not {size}")
        return bytes(out)
    if name == "gzip":
        # Zarr's gzip is a gzip member; HDF5's deflate filter (v1 section 2.3) is a zlib stream.
        wbits = zlib.MAX_WBITS if hdf5 else 16 + zlib.MAX_WBITS
        return _stream_decompress(zlib.decompressobj(wbits), payload, size)
    if name == "numcodecs.zlib":
        return _stream_decompress(zlib.decompressobj(), payload, size)
    if name == "numcodecs.bz2":
        return _stream_decompress(bz2.BZ2Decompressor(), payload, size)
    if name == "numcodecs.lzma":
        return _stream_decompress(lzma.LZMADecompressor(), payload, size)
    if name == "numcodecs.lz4" and hdf5:
        return _hdf5_lz4(payload, size)
    if name.startswith("numcodecs."):
        out = numcodecs.get_codec({"id": name.removeprefix("numcodecs."), **config}).decode(payload)
        out = bytes(out)
        if len(out) != size:
            raise SpecReaderError(f"{name} chunk decodes to {len(out)} bytes, not {size}")
        return out
    raise SpecReaderError(f"unknown codec {name!r}")


def _hdf5_lz4(payload: bytes, size: int) -> bytes:
    """v2 section 10: hdf5plugin LZ4 frames (total size, block size, then sized blocks)."""
    total = int.from_bytes(payload[:8], "big")
    block = int.from_bytes(payload[8:12], "big")
    if total != size or block <= 0:
        raise SpecReaderError(f"lz4 chunk claims {total} bytes, not {size}")
    lz4 = numcodecs.LZ4()
    out = bytearray()
    position = 12
    while len(out) < total:
        want = min(block, total - len(out))
        stored = int.from_bytes(payload[position : position + 4], "big")
        data = payload[position + 4 : position + 4 + stored]
        position += 4 + stored
        if stored == want:
            out += data
        else:
            # numcodecs' LZ4 prefixes the decoded size (4 bytes little endian) to a raw block.
            out += lz4.decode(want.to_bytes(4, "little") + data)
    if len(out) != size or position != len(payload):
        raise SpecReaderError("damaged lz4 chunk")
    return bytes(out)


# -- node values (sections 5, 6) ------------------------------------------------------------


def _check_chunk_crc(node: Node, index: tuple[int, ...], payload: bytes, trailing: int | None) -> None:
    if node.checksum is None:
        return
    actual = crc32c.crc32c(payload)
    if trailing is not None and actual != trailing:
        raise SpecReaderError(f"node {node.path} chunk {index}: trailing CRC-32C mismatch")
    listed = node.listed_crc(index)
    if listed is not None and actual != listed:
        raise SpecReaderError(f"node {node.path} chunk {index}: CRC-32C differs from the record")


def assemble(
    node: Node,
    chunks: dict[tuple[int, ...], bytes],
    chunk_shape: tuple[int, ...] | None = None,
    chunk_order: str | None = None,
) -> np.ndarray:
    """Put decoded chunks (each ``chunk_shape``, by default the node's, with its bytes in
    ``chunk_order``, by default the node's ``order``) into one writable array in ``order``."""
    chunk_shape = node.chunk_shape if chunk_shape is None else chunk_shape
    chunk_order = node.order if chunk_order is None else chunk_order
    # Assemble as raw void items, so padding bytes of structured dtypes come through too.
    raw = np.dtype((np.void, node.dtype.itemsize)) if node.dtype.itemsize else node.dtype
    out = np.empty(node.shape, dtype=raw, order=node.order)
    nbytes = math.prod(chunk_shape) * node.dtype.itemsize
    for index, data in chunks.items():
        if len(data) != nbytes:
            raise SpecReaderError(f"node {node.path} chunk {index}: {len(data)} bytes")
        chunk = np.frombuffer(data, dtype=raw).reshape(chunk_shape, order=chunk_order)
        region = tuple(
            slice(i * c, min((i + 1) * c, size))
            for i, c, size in zip(index, chunk_shape, node.shape, strict=True)
        )
        out[region] = chunk[tuple(slice(0, s.stop - s.start) for s in region)]
    return out.view(node.dtype)


def read_zarr_node(container: Any, node: Node) -> np.ndarray:
    """Sections 5.2-5.4 in the Zarr containers: payload + 4 bytes CRC-32C little endian."""
    chunks = {}
    for index in node.chunk_indices():
        key = f"{node.path}/c/" + "/".join(map(str, index)) if index else f"{node.path}/c"
        stored = container.get(key)
        if stored is None:
            raise SpecReaderError(f"node {node.path}: chunk {key} is missing")
        if node.checksum == "crc32c":
            if len(stored) < 4:
                raise SpecReaderError(f"node {node.path}: chunk {key} too short")
            payload, trailing = stored[:-4], int.from_bytes(stored[-4:], "little")
        else:
            payload, trailing = stored, None
        _check_chunk_crc(node, index, payload, trailing)
        chunks[index] = payload if node.codec is None else decode(node.codec, payload, node.chunk_nbytes)
    return assemble(node, chunks)


# HDF5 (section 2.3; v1 section 2.3 and v2 section 10 for version 1)

_HDF5_FILTERS = {"blosc": 32001, "zstd": 32015, "numcodecs.zlib": 1, "gzip": 1,
                 "numcodecs.bz2": 307, "numcodecs.lz4": 32004}  # fmt: skip
FLETCHER32 = 3
MAX_BAND_NBYTES = 64 << 20


def _check_dataset_type(node: Node, dataset: h5py.Dataset) -> tuple[int, ...]:
    """Section 2.3: the layout marker, shape and type a dataset must have; returns its shape."""
    marker = dataset.attrs.get("zoblib_layout")
    if marker != node.hdf5_layout:
        raise SpecReaderError(
            f"dataset {node.path}: zoblib_layout {marker!r}, the record says {node.hdf5_layout!r}"
        )
    named = dataset.attrs.get("zoblib_dtype")
    if named is not None and parse_json(named) != node.dtype_json:
        raise SpecReaderError(f"dataset {node.path}: zoblib_dtype differs from the record")
    if node.hdf5_layout == "logical":
        # h5py reads the opaque types tagged NUMPY:<dtype.str> as that dtype.
        want = np.dtype(f"V{node.dtype.itemsize}") if named is not None else node.dtype
        if dataset.dtype != want or dataset.dtype.str != want.str:
            raise SpecReaderError(f"dataset {node.path}: HDF5 type {dataset.dtype}, expected {want}")
        shape = node.shape
    else:
        shape = node.shape[::-1] if node.order == "F" else node.shape
        if named is not None:
            if dataset.dtype != np.uint8:
                raise SpecReaderError(f"dataset {node.path}: opaque dataset is not uint8")
            shape = (*shape, node.dtype.itemsize)
        elif dataset.dtype != node.dtype:
            raise SpecReaderError(f"dataset {node.path}: HDF5 type {dataset.dtype} != {node.dtype}")
    if dataset.shape != shape:
        raise SpecReaderError(f"dataset {node.path}: shape {dataset.shape}, expected {shape}")
    return shape


def _check_crc(node: Node, data: bytes, dataset: h5py.Dataset) -> None:
    """The CRC-32C of an uncompressed node's memory in its order (section 5.3)."""
    if node.checksum != "crc32c":
        return
    expected = node.listed_crc(()) if node.chunk_crcs is not None else None
    if expected is None:
        expected = int(dataset.attrs["crc32c"])  # version 1: the attribute
    if crc32c.crc32c(data) != expected:
        raise SpecReaderError(f"dataset {node.path}: CRC-32C mismatch")


def _raw_chunks(dataset: h5py.Dataset, raw: Any) -> list[tuple[tuple[int, ...], bytes, int]]:
    """Every stored chunk: (offset in the dataset, stored bytes, filter mask)."""
    found = []
    for i in range(dataset.id.get_num_chunks()):
        info = dataset.id.get_chunk_info(i)
        raw.seek(info.byte_offset)
        found.append((tuple(info.chunk_offset), raw.read(info.size), info.filter_mask))
    return found


def _read_bands(node: Node, dataset: h5py.Dataset, raw: Any, filters: list[int]) -> np.ndarray:
    """Section 2.3: an uncompressed F node of the logical layout, chunked in bands."""
    chunks = dataset.chunks
    if chunks is None or filters:
        raise SpecReaderError(f"dataset {node.path}: not chunked in bands without filters")
    split = next((a for a, (c, n) in enumerate(zip(chunks, node.shape, strict=True)) if c != n), len(chunks))
    if any(c != 1 for c in chunks[split + 1 :]) or math.prod(chunks) * node.dtype.itemsize > MAX_BAND_NBYTES:
        raise SpecReaderError(f"dataset {node.path}: chunks {chunks} are not bands")
    grid = tuple(math.ceil(n / c) for n, c in zip(node.shape, chunks, strict=True))
    stored = {}
    for offset, data, mask in _raw_chunks(dataset, raw):
        if mask != 0:
            raise SpecReaderError(f"dataset {node.path}: chunk filter mask {mask}")
        stored[tuple(o // c for o, c in zip(offset, chunks, strict=True))] = data
    if set(stored) != set(np.ndindex(*grid)):
        raise SpecReaderError(f"dataset {node.path}: chunks do not cover the grid")
    # Each chunk holds the C-order bytes of its region; the record's CRC is the F-order bytes'.
    array = assemble(node, stored, chunk_shape=chunks, chunk_order="C")
    _check_crc(node, np.asfortranarray(array).tobytes(order="F"), dataset)
    return array


def read_hdf5_node(file: h5py.File, raw: Any, node: Node, version: int) -> np.ndarray:
    dataset = file.get(node.path)
    if not isinstance(dataset, h5py.Dataset):
        raise SpecReaderError(f"node {node.path}: no dataset")
    _check_dataset_type(node, dataset)
    logical = node.hdf5_layout == "logical"
    plist = dataset.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    nbytes = math.prod(node.shape) * node.dtype.itemsize
    if node.codec is None and logical and node.order == "F" and len(node.shape) > 1 and nbytes:
        return _read_bands(node, dataset, raw, filters)
    if node.codec is None or nbytes == 0 or not node.shape:
        # Uncompressed: contiguous, raw bytes at the dataset offset (section 5.3 without CRC):
        # the node's memory in its order (C order in the logical layout, whose F nodes are bands).
        if dataset.chunks is not None or filters:
            raise SpecReaderError(f"dataset {node.path}: uncompressed node is not contiguous")
        if nbytes == 0:
            return np.empty(node.shape, dtype=node.dtype, order=node.order)
        offset = dataset.id.get_offset()
        if offset is None or dataset.id.get_storage_size() != nbytes:
            raise SpecReaderError(f"dataset {node.path}: storage is not {nbytes} bytes")
        raw.seek(offset)
        data = raw.read(nbytes)
        _check_crc(node, data, dataset)
        array = np.frombuffer(bytearray(data), dtype=node.dtype)
        return array.reshape(node.shape, order=node.order)
    # Compressed: chunked, the codec's filter (+ Fletcher-32 in version 1).
    want = [_HDF5_FILTERS.get(node.codec["name"])] + ([FLETCHER32] if version == 1 else [])
    if filters != want:
        raise SpecReaderError(f"dataset {node.path}: filters {filters}, expected {want}")
    opaque = not logical and "zoblib_dtype" in dataset.attrs
    if logical:
        chunk_shape = node.chunk_shape  # chunks of the node's grid, each in C order
    else:
        chunk_shape = node.chunk_shape[::-1] if node.order == "F" else node.chunk_shape
        if opaque:
            chunk_shape = (*chunk_shape, node.dtype.itemsize)
    if dataset.chunks != chunk_shape:
        raise SpecReaderError(f"dataset {node.path}: chunks {dataset.chunks} != {chunk_shape}")
    if dataset.id.get_num_chunks() != node.nchunks:
        raise SpecReaderError(f"dataset {node.path}: not every chunk is present")
    chunks = {}
    for chunk_offset, stored, mask in _raw_chunks(dataset, raw):
        grid_index = tuple(o // c for o, c in zip(chunk_offset, chunk_shape, strict=True))
        if opaque:
            grid_index = grid_index[:-1]
        index = grid_index[::-1] if node.order == "F" and not logical else grid_index
        if version == 1:
            stored = stored[:-4]  # Fletcher-32 (checking it is optional here)
            if mask & 1:
                chunks[index] = stored  # HDF5 skipped the codec
                continue
        elif mask != 0:
            raise SpecReaderError(f"dataset {node.path}: chunk filter mask {mask}")
        _check_chunk_crc(node, index, stored, None)
        chunks[index] = decode(node.codec, stored, node.chunk_nbytes, hdf5=True)
    if set(chunks) != set(node.chunk_indices()):
        raise SpecReaderError(f"dataset {node.path}: chunks do not cover the grid")
    return assemble(node, chunks, chunk_order="C" if logical else None)


# -- digests (section 3.2) ------------------------------------------------------------------


def _has_long_double(dtype: np.dtype) -> bool:
    if dtype.subdtype is not None:
        return _has_long_double(dtype.subdtype[0])
    if dtype.fields:
        return any(_has_long_double(field[0]) for field in dtype.fields.values())
    return dtype.char in "gG"


def _without_padding(array: np.ndarray) -> np.ndarray:
    from numpy.lib import recfunctions

    if array.dtype.names is None:
        return array
    return recfunctions.repack_fields(array, recurse=True)


def check_digest(array: np.ndarray, digest: str | None) -> None:
    if digest is None or _has_long_double(array.dtype):
        return
    algorithm, _, expected = digest.partition(":")
    if algorithm != "xxh3_128":
        return  # an unknown algorithm is not damage by the spec's words
    data = np.ascontiguousarray(_without_padding(array)).tobytes()
    if xxhash.xxh3_128_hexdigest(data) != expected:
        raise SpecReaderError(f"digest mismatch: {digest}")


# -- references and packs (sections 3.2, 6) -------------------------------------------------


def resolve_refs(
    record: dict[str, Any], nodes: dict[str, Node], values: dict[str, np.ndarray]
) -> list[np.ndarray]:
    refs = record["refs"]
    if not isinstance(refs, list):
        raise SpecReaderError("refs is not an array")
    arrays = []
    pack_members: dict[str, list[tuple[int, int]]] = {}
    for k, ref in enumerate(refs):
        if not isinstance(ref, dict) or ref.get("node") not in nodes:
            raise SpecReaderError(f"refs[{k}]: unknown node")
        node = nodes[ref["node"]]
        whole = values[node.path]
        if "offset" in ref:
            offset = ref["offset"]
            shape = _int_list(ref["shape"], "member shape", 0)
            order = ref["order"]
            if type(offset) is not int or offset < 0 or order not in ("C", "F"):
                raise SpecReaderError(f"refs[{k}]: bad pack member")
            if len(node.shape) != 1:
                raise SpecReaderError(f"refs[{k}]: pack {node.path} is not 1-D")
            count = math.prod(shape)
            pack_members.setdefault(node.path, []).append((offset, count))
            array = whole[offset : offset + count].reshape(shape, order=order)
        else:
            array = whole
        check_digest(array, ref.get("digest"))
        arrays.append(array)
    for path, members in pack_members.items():
        position = 0
        for offset, count in sorted(members):
            if offset != position:
                raise SpecReaderError(f"pack {path}: members overlap or leave a gap at {offset}")
            position += count
        if position != nodes[path].shape[0]:
            raise SpecReaderError(f"pack {path}: members do not fill it ({position})")
    return arrays


# -- the skeleton (section 4) ---------------------------------------------------------------


def rebuild_array(data: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    """Section 4: an inline array from its raw bytes (argument types are not in the spec)."""
    dtype = np.dtype(dtype)
    array = np.frombuffer(bytearray(data), dtype=dtype)
    return array.reshape(tuple(shape), order=order)


def rebuild_masked_array(data: Any, mask: Any, fill_value: Any, hard_mask: Any) -> np.ndarray:
    """Section 4: a masked array whose ``data`` and ``mask`` may be extracted arrays."""
    if mask is False:
        mask = np.ma.nomask  # not in the spec: zoblib writes Python False for nomask
    return np.ma.MaskedArray(data, mask=mask, fill_value=fill_value, hard_mask=bool(hard_mask), copy=False)


SKELETON_GLOBALS = {"rebuild_array": rebuild_array, "rebuild_masked_array": rebuild_masked_array}


class SkeletonUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, arrays: list[np.ndarray]) -> None:
        super().__init__(file)
        self.arrays = arrays

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, str) and pid.isdigit() and pid.isascii():  # protocol 0 PERSID
            pid = int(pid)
        if type(pid) is not int or not 0 <= pid < len(self.arrays):
            raise SpecReaderError(f"bad persistent id {pid!r}")
        return self.arrays[pid]

    def find_class(self, module: str, name: str) -> Any:
        if module == SKELETON_MODULE and name in SKELETON_GLOBALS:
            return SKELETON_GLOBALS[name]
        if module == "zoblib" or module.startswith("zoblib."):
            raise SpecReaderError(f"the skeleton names {module}.{name}, which the spec omits")
        return super().find_class(module, name)


# -- load -----------------------------------------------------------------------------------


def read_record(kind: str, container: Any, h5file: h5py.File | None) -> tuple[dict, int]:
    if kind == "hdf5":
        if "zoblib" not in h5file.attrs or "zoblib_crc32c" not in h5file.attrs:
            raise SpecReaderError("HDF5 root group lacks the zoblib attributes")
        record = parse_json(h5file.attrs["zoblib"])
        stated = parse_json(h5file.attrs["zoblib_crc32c"])
    else:
        text = container.get("zarr.json")
        if text is None:
            raise SpecReaderError("no root zarr.json")
        document = parse_json(text)
        attributes = document.get("attributes", {}) if isinstance(document, dict) else {}
        if "zoblib" not in attributes:
            raise SpecReaderError("root zarr.json has no zoblib record")
        record = attributes["zoblib"]
        stated = attributes.get("zoblib_crc32c")
    version = check_format_version(record)
    check_record_crc(record, stated)
    return record, version


def load(path: str | os.PathLike[str], *, return_details: bool = False) -> Any:
    """Load the object of a zoblib archive, by the spec alone."""
    path = Path(path)
    kind = detect_container(path)
    container: Any = None
    h5file = raw = None
    with contextlib.ExitStack() as stack:
        if kind == "directory":
            container = DirectoryContainer(path)
        elif kind == "zip":
            container = stack.enter_context(contextlib.closing(ZipContainer(path)))
        else:
            h5file = stack.enter_context(h5py.File(path, "r"))
            raw = stack.enter_context(open(path, "rb"))
        record, version = read_record(kind, container, h5file)
        if not isinstance(record.get("nodes"), dict):
            raise SpecReaderError("nodes is not an object")
        nodes = {p: Node(p, entry, version) for p, entry in record["nodes"].items()}
        skeleton = nodes.get(record.get("skeleton"))
        if skeleton is None or skeleton.dtype != np.uint8 or len(skeleton.shape) != 1:
            raise SpecReaderError("the skeleton node is missing or not 1-D uint8")
        values = {}
        for node in nodes.values():
            if kind == "hdf5":
                values[node.path] = read_hdf5_node(h5file, raw, node, version)
            else:
                values[node.path] = read_zarr_node(container, node)
        arrays = resolve_refs(record, nodes, values)
        if record.get("pickler") == "cloudpickle":
            import cloudpickle  # noqa: F401  (registers what by-value functions need)
        skeleton_bytes = values[skeleton.path].tobytes()
        value = SkeletonUnpickler(io.BytesIO(skeleton_bytes), arrays).load()
    if return_details:
        return value, {"kind": kind, "version": version, "record": record, "values": values}
    return value
