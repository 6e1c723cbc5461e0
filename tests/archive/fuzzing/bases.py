"""The base archives the fuzzer damages: one object, dumped in every container and setting.

The dump keywords keep each archive near 4 MiB while it still has every kind of node: arrays of
their own split in several chunks, packs of mid-size arrays, arrays inline in the skeleton.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import zoblib

#: The compression settings, as ``compress=`` values.
SETTINGS: dict[str, Any] = {"none": 0, "blosc": 3, "zlib": ("zlib", 3), "zstd": "zstd"}
#: The containers, by the suffix that selects them.
SUFFIXES = {"zip": ".pkl", "zarr": ".zarr", "h5": ".h5"}
DUMP_OPTIONS: dict[str, Any] = {"chunk_nbytes": 256 << 10, "pack_threshold": 1 << 20}
#: The JSON "document" name of the HDF5 root attributes (they are not files).
HDF5_RECORD = "@zoblib"
HDF5_RECORD_CHECKSUM = "@zoblib_crc32c"


def original_object() -> dict[str, Any]:
    """The object every base archive holds (the same on every call)."""
    rng = np.random.default_rng(20240610)
    return {
        # 2 MiB of float64: a node of its own, 8 chunks of different compressed sizes.
        "big": rng.standard_normal(1 << 18),
        # 1 MiB of random bits: a node of its own whose compressed chunks all have one size.
        "noise": rng.integers(0, 2**62, 1 << 17, dtype=np.int64),
        # Mid-size arrays: packed.
        "mid": [np.arange(20_000, dtype=np.int32), rng.random(16_000)],
        "big_endian": np.arange(30_000, dtype=">i4"),
        "fortran": np.asfortranarray(rng.random((100, 120))),
        "masked": np.ma.masked_array(rng.random(20_000), mask=rng.random(20_000) < 0.3),
        # Inline in the skeleton.
        "small": np.arange(10),
        "small_masked": np.ma.masked_array(np.arange(12.0), mask=np.arange(12) % 3 == 0),
        "text": "héllo wörld",
        "raw": b"\x00\x01zoblib",
        "numbers": (1, 2.5, None, True),
    }


@dataclass(frozen=True)
class Region:
    """A byte range of one file of an archive, named for reports."""

    file: str  # relative to a ``.zarr`` directory; "" for single-file containers
    start: int
    stop: int
    label: str


@dataclass
class BaseArchive:
    """One intact base archive and what the mutations need to know of its layout."""

    container: str
    setting: str
    path: Path
    #: (file, size): every file ("" for a single-file container).
    files: list[tuple[str, int]] = field(default_factory=list)
    #: Byte regions worth aiming at (members' headers and data, HDF5 metadata, ...).
    regions: list[Region] = field(default_factory=list)
    #: ZIP members (name, size), in file order.
    members: list[tuple[str, int]] = field(default_factory=list)
    #: JSON documents by name (ZIP member, file of the directory, or HDF5 root attribute).
    documents: dict[str, Any] = field(default_factory=dict)
    #: Uncompressed array data that ``load(mmap_mode='r')`` maps without checking it.
    unchecked: list[Region] = field(default_factory=list)
    #: Why the base could not be built (the dump raised), if it could not.
    error: str | None = None

    @property
    def name(self) -> str:
        return f"{self.container}/{self.setting}"


def build_base(container: str, setting: str, directory: Path) -> BaseArchive:
    """Dump the original object as ``container`` with ``setting`` and describe its layout."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"base-{setting}{SUFFIXES[container]}"
    base = BaseArchive(container, setting, path)
    try:
        zoblib.dump(original_object(), path, compress=SETTINGS[setting], **DUMP_OPTIONS)
    except Exception as exc:
        base.error = f"dump failed: {type(exc).__name__}: {exc}"
        return base
    {"zip": _describe_zip, "zarr": _describe_directory, "h5": _describe_hdf5}[container](base)
    return base


def copy_base(base: BaseArchive, target: Path) -> None:
    """A fresh copy of the base archive at ``target``."""
    if base.path.is_dir():
        shutil.copytree(base.path, target)
    else:
        shutil.copyfile(base.path, target)


def zip_layout(path: Path) -> list[tuple[zipfile.ZipInfo, int]]:
    """Each member of a ZIP file with the offset of its data, in file order."""
    layout = []
    with open(path, "rb") as file, zipfile.ZipFile(file) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.header_offset):
            file.seek(info.header_offset + 26)
            name_len, extra_len = np.frombuffer(file.read(4), "<u2")
            layout.append((info, info.header_offset + 30 + int(name_len) + int(extra_len)))
    return layout


def _describe_zip(base: BaseArchive) -> None:
    size = base.path.stat().st_size
    base.files = [("", size)]
    layout = zip_layout(base.path)
    chunks: list[tuple[str, Region]] = []
    with zipfile.ZipFile(base.path) as archive:
        for info, data_offset in layout:
            name = info.filename
            base.members.append((name, info.file_size))
            base.regions.append(Region("", info.header_offset, data_offset, f"{name} local header"))
            data = Region("", data_offset, data_offset + info.file_size, f"{name} data")
            if info.file_size:
                base.regions.append(data)
            if name.endswith("zarr.json"):
                base.documents[name] = json.loads(archive.read(name))
            if "/c/" in name:
                chunks.append((name.split("/c/")[0], data))
    end = max(offset + info.file_size for info, offset in layout)
    base.regions.append(Region("", end, size, "zip central directory"))
    base.regions.append(Region("", max(0, size - 22), size, "zip end record"))
    mapped = _memory_mapped_nodes(base.documents["zarr.json"]["attributes"]["zoblib"])
    base.unchecked = [region for node, region in chunks if node in mapped]


def _describe_directory(base: BaseArchive) -> None:
    chunks: list[tuple[str, Region]] = []
    for dirpath, _, filenames in os.walk(base.path):
        for filename in sorted(filenames):
            full = Path(dirpath, filename)
            relative = full.relative_to(base.path).as_posix()
            size = full.stat().st_size
            base.files.append((relative, size))
            region = Region(relative, 0, size, relative)
            if size:
                base.regions.append(region)
            if filename == "zarr.json":
                base.documents[relative] = json.loads(full.read_bytes())
            if "/c/" in relative:
                chunks.append((relative.split("/c/")[0], region))
    base.files.sort()
    mapped = _memory_mapped_nodes(base.documents["zarr.json"]["attributes"]["zoblib"])
    base.unchecked = [region for node, region in chunks if node in mapped]


def _describe_hdf5(base: BaseArchive) -> None:
    size = base.path.stat().st_size
    base.files = [("", size)]
    data: list[Region] = []

    def visit(name: str, item: Any) -> None:
        if not isinstance(item, h5py.Dataset):
            return
        dataset = item.id
        if item.chunks is None:
            offset = dataset.get_offset()
            if offset is not None and dataset.get_storage_size():
                data.append(Region("", offset, offset + dataset.get_storage_size(), f"{name} data"))
        else:
            for number in range(dataset.get_num_chunks()):
                chunk = dataset.get_chunk_info(number)
                data.append(
                    Region("", chunk.byte_offset, chunk.byte_offset + chunk.size, f"{name} chunk {number}")
                )

    with h5py.File(base.path, "r") as file:
        file.visititems(visit)
        base.documents[HDF5_RECORD] = json.loads(file.attrs["zoblib"])
        base.documents[HDF5_RECORD_CHECKSUM] = json.loads(file.attrs["zoblib_crc32c"])
    data.sort(key=lambda r: r.start)
    position = 0
    for region in data:
        if region.start > position:
            base.regions.append(Region("", position, region.start, "hdf5 metadata"))
        position = max(position, region.stop)
    if position < size:
        base.regions.append(Region("", position, size, "hdf5 metadata"))
    base.regions.extend(data)
    mapped = _memory_mapped_nodes(base.documents[HDF5_RECORD])
    # Uncompressed datasets are contiguous: one "<node> data" region each.
    base.unchecked = [r for r in data if r.label.removesuffix(" data") in mapped]


def _memory_mapped_nodes(record: dict[str, Any]) -> set[str]:
    """The nodes ``load(mmap_mode='r')`` maps: the uncompressed ones, but the skeleton."""
    nodes = record["nodes"]
    return {
        path for path, entry in nodes.items() if entry.get("codec") is None and path != record["skeleton"]
    }
