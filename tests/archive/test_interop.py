"""Archives are plain Zarr v3: zarr-python reads them without zoblib, and so can anyone.

The last test is the recipe for another reader: read the root attributes, unpickle the skeleton
with a ``persistent_load`` that looks each reference up in ``refs`` and reads its Zarr array.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
import zarr.storage

import zoblib


def load_stored(*args: Any, **kwargs: Any) -> Any:
    """``zoblib.load`` keeping the stored byte order: these tests compare dtypes exactly."""
    kwargs.setdefault("ensure_native_byte_order", False)
    return zoblib.load(*args, **kwargs)


# zarr-python warns that numcodecs.* codecs (zlib, bz2, lzma, lz4) are outside the Zarr v3 spec.
pytestmark = pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in the Zarr version 3 specification")

#: Arrays whose types Zarr v3 (and zarr-python's extensions) describe exactly.
ARRAYS: dict[str, np.ndarray[Any, Any]] = {
    "bool": np.arange(3000) % 3 == 0,
    "int8": (np.arange(-1500, 1500) % 256 - 128).astype(np.int8),
    "uint16": np.arange(3000, dtype=np.uint16),
    "int32": np.arange(-3000, 3000, 2, dtype=np.int32),
    "uint64": np.arange(3000, dtype=np.uint64) * 2**40,
    "float16": np.linspace(-1, 1, 3000).astype(np.float16),
    "float32": np.linspace(0, 1, 3000, dtype=np.float32),
    "float64-2d": np.linspace(0, 1, 6000).reshape(60, 100),
    "complex128": np.arange(3000) * (1 + 2j),
    "datetime64": np.arange(3000).astype("timedelta64[s]") + np.datetime64("2024-01-01T00:00:00"),
    "timedelta64": np.arange(3000).astype("timedelta64[ms]"),
    "big-endian-float": np.linspace(0, 1, 3000).astype(">f8"),
    "big-endian-int": np.arange(3000, dtype=">i4").reshape(30, 100),
    "fortran": np.asfortranarray(np.arange(6000, dtype=np.int64).reshape(60, 100)),
    "fortran-3d": np.asfortranarray(np.arange(6000, dtype=np.float32).reshape(10, 20, 30)),
    "structured": np.array(
        [(i, i * 0.5, b"ab") for i in range(1000)], dtype=[("id", "<i4"), ("x", "<f8"), ("tag", "S2")]
    ),
    "bytes": np.array([b"abc", b"de", b""] * 1000, dtype="S3"),
    "unicode": np.array(["abc", "dé", ""] * 1000, dtype="<U3"),
}
CONTAINERS = ["zip", "zarr"]
COMPRESSIONS = [0, 3, "zstd", ("gzip", 6), "zlib", ("lzma", 1), ("bz2", 1), "lz4"]


@contextmanager
def open_with_zarr(path: Path) -> Iterator[zarr.Group]:
    """The archive's root group, opened by zarr-python alone."""
    if path.is_dir():
        yield zarr.open_group(str(path), mode="r")
        return
    store = zarr.storage.ZipStore(str(path), mode="r")
    try:
        yield zarr.open_group(store, mode="r")
    finally:
        store.close()


def _dump(tmp_path: Path, container: str, value: Any, **options: Any) -> Path:
    path = tmp_path / ("archive.zarr" if container == "zarr" else "archive.pkl")
    zoblib.dump(value, path, **options)
    return path


def _assert_same_values(read: np.ndarray[Any, Any], original: np.ndarray[Any, Any]) -> None:
    assert read.shape == original.shape
    # Zarr may hand back a native byte order: what must match is the type and every value.
    assert read.dtype == original.dtype or read.dtype == original.dtype.newbyteorder("=")
    if original.dtype.names:
        for name in original.dtype.names:
            np.testing.assert_array_equal(read[name], original[name])
    else:
        np.testing.assert_array_equal(read, original)


@pytest.mark.parametrize("compress", COMPRESSIONS, ids=repr)
@pytest.mark.parametrize("container", CONTAINERS)
def test_zarr_reads_every_extracted_array(tmp_path: Path, container: str, compress: Any) -> None:
    names = list(ARRAYS)
    path = _dump(
        tmp_path,
        container,
        [ARRAYS[n] for n in names],
        compress=compress,
        inline_threshold=0,
        pack_threshold=0,
        chunk_nbytes=4096,
    )
    with open_with_zarr(path) as group:
        refs = group.attrs["zoblib"]["refs"]
        assert len(refs) == len(names)
        for name, ref in zip(names, refs, strict=True):
            node = group[ref["node"]]
            assert isinstance(node, zarr.Array), name
            assert ref["node"].startswith("arrays/")
            _assert_same_values(node[...], ARRAYS[name])


@pytest.mark.parametrize("container", CONTAINERS)
def test_zarr_reads_packs(tmp_path: Path, container: str) -> None:
    members = [np.arange(100, dtype=np.int32) * i for i in range(5)]
    fortran = np.asfortranarray(np.arange(60.0).reshape(6, 10))
    path = _dump(tmp_path, container, [*members, fortran], inline_threshold=0)
    with open_with_zarr(path) as group:
        refs = group.attrs["zoblib"]["refs"]
        for ref, original in zip(refs, [*members, fortran], strict=True):
            assert ref["node"].startswith("packs/")
            pack = group[ref["node"]]
            flat = pack[ref["offset"] : ref["offset"] + math.prod(ref["shape"])]
            _assert_same_values(flat.reshape(ref["shape"], order=ref["order"]), original)


@pytest.mark.parametrize("compress", [0, 3])
def test_zip_members_carry_correct_crc32(tmp_path: Path, compress: int) -> None:
    # Python's zipfile re-computes every member's CRC-32 and compares it with the headers'.
    # The big array spans several of the writer's CRC batches; the list fills a pack.
    rng = np.random.default_rng(2)
    value = {"big": rng.random(3_000_000), "mid": [rng.random(20_000) for _ in range(40)]}
    path = _dump(tmp_path, "zip", value, compress=compress)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert len(archive.infolist()) > 3
    damaged = tmp_path / "damaged.pkl"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    damaged.write_bytes(bytes(data))
    with zipfile.ZipFile(damaged) as archive:
        assert archive.testzip() is not None


@pytest.mark.parametrize("compress", [0, "zstd"], ids=repr)
@pytest.mark.parametrize("container", CONTAINERS)
def test_zarr_reads_the_skeleton_and_root_attributes(tmp_path: Path, container: str, compress: Any) -> None:
    value = {"x": np.arange(100_000.0), "label": "text", "numbers": [1, 2.5, None]}
    path = _dump(tmp_path, container, value, compress=compress, protocol=4, pack_threshold=0)
    with open_with_zarr(path) as group:
        record = dict(group.attrs["zoblib"])
        skeleton = group[record["skeleton"]][...]
    assert record["format_version"] == 2
    assert record["zoblib_version"] == zoblib.__version__
    assert record["numpy_version"] == np.__version__
    assert record["pickle_protocol"] == 4
    assert record["pickler"] == "pickle"
    assert record["skeleton"] == "skeleton"
    assert isinstance(record["python_version"], str) and record["python_version"].count(".") == 2
    assert set(record["nodes"]) == {"skeleton", "arrays/x"}
    assert record["refs"][0]["node"] == "arrays/x"
    assert skeleton.dtype == np.uint8 and skeleton.ndim == 1
    data = skeleton.tobytes()
    assert data[:2] == b"\x80\x04"  # a protocol-4 pickle
    assert b"label" in data and b"text" in data


class ZarrOnlyUnpickler(pickle.Unpickler):
    """How a reader without zoblib rebuilds an archive: zarr-python and pickle only."""

    def __init__(self, file: io.BytesIO, group: zarr.Group) -> None:
        super().__init__(file)
        self.group = group
        self.refs = group.attrs["zoblib"]["refs"]
        self.loaded: dict[int, np.ndarray[Any, Any]] = {}

    def persistent_load(self, pid: Any) -> Any:
        if pid not in self.loaded:
            ref = self.refs[pid]
            node = self.group[ref["node"]]
            if "offset" in ref:  # a member of a pack: a run of the pack's elements
                start, shape = ref["offset"], tuple(ref["shape"])
                self.loaded[pid] = node[start : start + math.prod(shape)].reshape(shape, order=ref["order"])
            else:
                self.loaded[pid] = node[...]
        return self.loaded[pid]


@pytest.mark.parametrize("compress", [0, "zstd", ("lzma", 1)], ids=repr)
@pytest.mark.parametrize("container", CONTAINERS)
def test_pickle_and_zarr_alone_rebuild_the_object(tmp_path: Path, container: str, compress: Any) -> None:
    shared = np.arange(5000.0)
    value = {
        "arrays": {name: array for name, array in ARRAYS.items() if name != "structured"},
        "shared": [shared, shared],
        "packed": [np.arange(300, dtype=np.int16) + i for i in range(4)],
        "small": np.arange(3),
        "meta": {"name": "run", "n": 3},
    }
    path = _dump(tmp_path, container, value, compress=compress, inline_threshold=512, pack_threshold=4096)
    with open_with_zarr(path) as group:
        assert group.attrs["zoblib"]["pickler"] == "pickle"
        skeleton = group[group.attrs["zoblib"]["skeleton"]][...].tobytes()
        rebuilt = ZarrOnlyUnpickler(io.BytesIO(skeleton), group).load()
    assert rebuilt["meta"] == value["meta"]
    assert rebuilt["shared"][0] is rebuilt["shared"][1]
    _assert_same_values(rebuilt["shared"][0], shared)
    _assert_same_values(rebuilt["small"], value["small"])
    for original, read in zip(value["packed"], rebuilt["packed"], strict=True):
        _assert_same_values(read, original)
    for name, original in value["arrays"].items():
        _assert_same_values(rebuilt["arrays"][name], original)
    with open_with_zarr(path) as group:
        kinds = {ref["node"].split("/")[0] for ref in group.attrs["zoblib"]["refs"]}
    assert kinds == {"arrays", "packs"}


@pytest.mark.parametrize("container", CONTAINERS)
def test_zarr_lists_an_archive_holding_generic_unit_datetimes(tmp_path: Path, container: str) -> None:
    # zarr-python refuses any fill value of a generic-unit datetime64: one such node used to
    # make members() fail for the whole archive.
    value = {"never": np.full(200_000, "NaT", "M8"), "span": np.arange(200_000).astype("m8"), "x": np.ones(9)}
    path = _dump(tmp_path, container, value, compress=3)
    with open_with_zarr(path) as group:
        names = {name for name, _ in group.members(max_depth=None)}
        counts = group["arrays/span"][...]
    assert {"arrays/never", "arrays/span"} <= names
    np.testing.assert_array_equal(counts, np.arange(200_000))  # other readers see the int64 counts
    loaded = load_stored(path)
    assert loaded["never"].dtype == np.dtype("M8") and np.isnat(loaded["never"]).all()
    assert loaded["span"].dtype == np.dtype("m8")


@pytest.mark.parametrize("suffix", [".pkl", ".zarr", ".h5"])
@pytest.mark.parametrize("compress", [0, 3])
def test_structured_types_with_out_of_order_fields_round_trip(
    tmp_path: Path, suffix: str, compress: int
) -> None:
    dtype = np.dtype({"names": ["a", "b"], "formats": ["<i4", ">i4"], "offsets": [4, 0]})
    big = np.zeros(100_000, dtype)
    big["a"], big["b"] = np.arange(100_000), -np.arange(100_000)
    path = tmp_path / f"fields{suffix}"
    zoblib.dump(
        {"big": big, "packed": big[:20_000].copy(), "inline": big[:5].copy()}, path, compress=compress
    )
    loaded = load_stored(path)
    for name, original in (("big", big), ("packed", big[:20_000]), ("inline", big[:5])):
        assert loaded[name].dtype == dtype
        np.testing.assert_array_equal(loaded[name], original)


PADDED_STRUCTS = [
    np.dtype({"names": ["a", "b"], "formats": ["<i8", "u1"], "offsets": [0, 8], "itemsize": 16}),
    np.dtype([("a", "u1"), ("b", "<f8")], align=True),
    np.dtype({"names": ["a", "b"], "formats": ["<i4", "<i4"], "offsets": [4, 0]}),
    np.dtype([("outer", np.dtype([("x", "u1"), ("y", "<i4")], align=True))]),
]


@pytest.mark.parametrize("dtype", PADDED_STRUCTS, ids=str)
def test_padded_structs_are_raw_bytes_to_zarr_without_importing_it(tmp_path: Path, dtype: np.dtype) -> None:
    # zarr-python cannot describe a padded struct (its native dtype would differ), so zoblib
    # stores it as raw_bytes; that is known without importing zarr (0.26 s in a fresh process:
    # a scikit-learn forest's first dump spent most of its time there).
    from zarr.dtype import parse_data_type

    try:
        described = parse_data_type(dtype, zarr_format=3).to_native_dtype() == dtype
    except Exception:
        described = False
    assert not described
    path = tmp_path / "padded.pkl"
    script = (
        "import pickle, sys, numpy as np, zoblib\n"
        f"dtype = pickle.loads(bytes.fromhex({pickle.dumps(dtype).hex()!r}))\n"
        f"zoblib.dump(np.zeros(20_000, dtype=dtype), {str(path)!r})\n"
        "assert 'zarr' not in sys.modules, 'zarr was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith("zarr.json") and n.count("/") >= 2]
        documents = [json.loads(archive.read(n)) for n in names]
    assert any(
        d.get("data_type", {}).get("name") == "raw_bytes"
        for d in documents
        if isinstance(d.get("data_type"), dict)
    )
    np.testing.assert_array_equal(load_stored(path), np.zeros(20_000, dtype=dtype))


def test_recorded_struct_dtypes_are_copies() -> None:
    # dtype_to_json caches the form of a struct (hundreds of arrays share one): what it returns
    # must be the caller's own, so that editing one record cannot change the next.
    from zoblib.archive.dtypes import dtype_from_json, dtype_to_json

    dtype = np.dtype([("a", "<i4"), ("b", "<f8", (2,))])
    first = dtype_to_json(dtype)
    first.append(["c", "<i2"])
    second = dtype_to_json(dtype)
    assert first != second and dtype_from_json(second) == dtype
