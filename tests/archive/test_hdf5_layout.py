"""HDF5's logical layout: h5py sees every array in its own shape and type (issue 11, item 3).

What a user of plain h5py sees is checked in a fresh process that never imports zoblib, and
zoblib's own loads in a fresh process too, so that nothing a writer left in memory helps.
Archives of the first layout (``hdf5_first_layout``) keep loading; a record that names the
wrong layout for its datasets is refused, never read into wrong values.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hdf5_first_layout import rewrite_in_first_layout
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import zoblib
from zoblib.archive.integrity import record_checksum

DATA = Path(__file__).parents[1] / "data"
COMPRESSIONS: list[Any] = [0, 3, "zstd", ("zlib", 2)]


def _value() -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(11)
    return {
        "fortran_2d": np.asfortranarray(rng.standard_normal((700, 900))),  # 5 MB: two bands
        "fortran_3d": np.asfortranarray(rng.integers(0, 1000, (40, 50, 60)).astype(">i4")),
        "c_order": rng.standard_normal((300, 400)),
        "stamps_ns": np.datetime64("2026-12-02", "ns") + np.arange(100_000) * 3,
        "stamps_s_fortran": np.asfortranarray(np.arange(300 * 400).astype("M8[s]").reshape(300, 400)),
        "durations_s": np.arange(100_000).astype("m8[s]"),
        "generic": np.array(np.arange(100_000), dtype="M8"),
        "words": np.array(["zoblib", "ab", "\u00e9t\u00e9"] * 20_000),
        "words_fortran": np.asfortranarray(np.array(["abc", "de"] * 20_000).reshape(200, 200)),
        "raw_void": np.frombuffer(rng.bytes(7 * 30_000), dtype="V7"),
        "record": np.zeros(90_000, dtype=[("a", "<i2"), ("b", [("c", "<f8"), ("d", "S3")])]),
        "record_of_words": np.array([("w", i) for i in range(50_000)], dtype=[("w", "<U3"), ("t", "<M8[s]")]),
        "flags": rng.integers(0, 2, 200_000).astype(bool),
    }


def _run(script: str) -> bytes:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return result.stdout


def _dump(path: Path, compress: Any, **options: Any) -> dict[str, np.ndarray[Any, Any]]:
    value = _value()
    options = {"pack_threshold": 0, "chunk_nbytes": 1 << 18} | options
    zoblib.dump(value, path, compress=compress, **options)
    return value


def _record(path: Path) -> dict[str, Any]:
    with h5py.File(path, "r") as file:
        record: dict[str, Any] = json.loads(file.attrs["zoblib"])
    return record


def _write_record(path: Path, record: dict[str, Any]) -> None:
    with h5py.File(path, "r+") as file:
        file.attrs["zoblib"] = json.dumps(record)
        file.attrs["zoblib_crc32c"] = json.dumps(record_checksum(record))


PLAIN_H5PY = """
import pickle, sys
import h5py, hdf5plugin
with h5py.File({path!r}, "r") as file:
    seen = {{name: file["arrays/" + name][()] for name in {names!r}}}
    types = {{name: file["arrays/" + name].dtype for name in {names!r}}}
    layouts = {{name: file["arrays/" + name].attrs["zoblib_layout"] for name in {names!r}}}
assert not [m for m in sys.modules if m.split(".")[0] == "zoblib"]
sys.stdout.buffer.write(pickle.dumps((seen, types, layouts)))
"""


@pytest.mark.parametrize("compress", COMPRESSIONS, ids=repr)
def test_plain_h5py_sees_every_array_in_its_shape_and_type(tmp_path: Path, compress: Any) -> None:
    path = tmp_path / "logical.h5"
    value = _dump(path, compress)
    names = list(value)
    seen, types, layouts = pickle.loads(_run(PLAIN_H5PY.format(path=str(path), names=names)))
    for name, array in value.items():
        got = seen[name]
        assert got.shape == array.shape, name
        if name == "record_of_words":  # no h5py compound for unicode fields: the element bytes
            assert got.dtype == np.dtype("V20") and got.tobytes() == array.tobytes()
            continue
        # h5py reads big-endian numbers into native ones; the dataset keeps the recorded type.
        assert types[name] == array.dtype and types[name].str == array.dtype.str, name
        assert got.dtype.kind == array.dtype.kind and np.array_equal(got, array), name
        assert layouts[name] == "logical"


def test_h5py_finds_the_numpy_type_of_opaque_datasets_in_their_tag(tmp_path: Path) -> None:
    path = tmp_path / "tags.h5"
    _dump(path, 3)
    with h5py.File(path, "r") as file:
        tags = {
            name: file[f"arrays/{name}"].id.get_type().get_tag()
            for name in ("stamps_ns", "durations_s", "generic", "words", "raw_void", "record_of_words")
        }
        named = json.loads(file["arrays/record_of_words"].attrs["zoblib_dtype"])
        assert "zoblib_dtype" not in file["arrays/stamps_ns"].attrs
    assert tags == {
        "stamps_ns": b"NUMPY:<M8[ns]",
        "durations_s": b"NUMPY:<m8[s]",
        "generic": b"NUMPY:<M8",
        "words": b"NUMPY:<U6",
        "raw_void": b"NUMPY:|V7",
        "record_of_words": b"NUMPY:|V20",
    }
    assert named == [["w", "<U3"], ["t", "<M8[s]"]]


def test_uncompressed_fortran_arrays_are_bands_and_c_arrays_stay_contiguous(tmp_path: Path) -> None:
    path = tmp_path / "bands.h5"
    value = {"tall": np.asfortranarray(np.arange(3000 * 300 * 3, dtype="<f8").reshape(3000, 300, 3))}
    value["c_order"] = np.ascontiguousarray(value["tall"])
    zoblib.dump(value, path)
    with h5py.File(path, "r") as file:
        # Full extent of the first axis, part of the next (174 + 126), 1 along the last.
        assert file["arrays/tall"].chunks == (3000, 174, 1) and file["arrays/tall"].compression is None
        assert file["arrays/c_order"].chunks is None
        assert np.array_equal(file["arrays/tall"][()], value["tall"])
    for mmap_mode in (None, "r"):
        loaded = zoblib.load(path, mmap_mode=mmap_mode)
        assert np.array_equal(loaded["tall"], value["tall"]) and loaded["tall"].flags.f_contiguous
        # Fortran-ordered bytes that HDF5 holds in C order cannot be memory-mapped as such.
        assert type(loaded["tall"]) is np.ndarray
        assert isinstance(loaded["c_order"], np.memmap) == (mmap_mode == "r")
    zoblib.verify(path)


ZOBLIB_LOAD = """
import pickle, sys, zoblib
value = zoblib.load({path!r}, ensure_native_byte_order=False)
zoblib.verify({path!r})
# Sent as bytes: pickle does not keep every array's byte order.
seen = {{n: (a.dtype.str, a.flags.c_contiguous, a.flags.f_contiguous, a.tobytes()) for n, a in value.items()}}
sys.stdout.buffer.write(pickle.dumps(seen))
"""


@pytest.mark.parametrize("first_layout", [False, True], ids=["logical", "first-layout"])
@pytest.mark.parametrize("compress", COMPRESSIONS, ids=repr)
def test_a_fresh_process_loads_both_layouts_in_the_recorded_order(
    tmp_path: Path, compress: Any, first_layout: bool
) -> None:
    path = tmp_path / "load.h5"
    value = _dump(path, compress)
    if first_layout:
        rewrite_in_first_layout(path)
        assert all("hdf5_layout" not in entry for entry in _record(path)["nodes"].values())
    seen = pickle.loads(_run(ZOBLIB_LOAD.format(path=str(path))))
    for name, array in value.items():
        dtype, c_contiguous, f_contiguous, data = seen[name]
        assert dtype == array.dtype.str and data == array.tobytes(), name
        if array.ndim > 1:
            assert (c_contiguous, f_contiguous) == (array.flags.c_contiguous, array.flags.f_contiguous), name


LAZY_3D = np.arange(13 * 11 * 17, dtype="<f8").reshape(13, 11, 17) * 0.5
LAZY_3D_F = np.asfortranarray(LAZY_3D[:, :, ::-1])
LAZY_STAMPS = np.asfortranarray(np.arange(13 * 11 * 17).astype("M8[ns]").reshape(13, 11, 17))


@pytest.fixture(scope="module", params=["logical", "first-layout"])
def lazy_fortran(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("lazy") / "lazy.h5"
    zoblib.dump(
        {"f": LAZY_3D_F, "stamps": LAZY_STAMPS},
        path,
        compress="zlib",
        inline_threshold=0,
        pack_threshold=0,
        chunk_nbytes=80,
    )
    if request.param == "first-layout":
        rewrite_in_first_layout(path)
    with h5py.File(path, "r") as file:
        assert file["arrays/f"].id.get_num_chunks() > 50
    return zoblib.load(path, mmap_mode="r")


@given(index=hnp.basic_indices(LAZY_3D.shape, allow_ellipsis=True), name=st.sampled_from(["f", "stamps"]))
def test_lazy_slices_of_fortran_nodes_match_numpy(lazy_fortran: Any, index: Any, name: str) -> None:
    expected = LAZY_3D_F if name == "f" else LAZY_STAMPS
    lazy = lazy_fortran[name]
    assert isinstance(lazy, zoblib.LazyArray)
    result = lazy[index]
    assert np.shape(result) == np.shape(expected[index])
    assert np.array_equal(result, expected[index])


def test_lazy_fortran_node_reads_whole_in_f_order(lazy_fortran: Any) -> None:
    whole = lazy_fortran["f"].read()
    assert whole.flags.f_contiguous and np.array_equal(whole, LAZY_3D_F)


# ---- a record that names the wrong layout is refused --------------------------------------


def _load_error(path: Path) -> str:
    with pytest.raises(zoblib.ArchiveCorruptedError) as caught:
        zoblib.load(path)
    assert str(path) in str(caught.value)
    with pytest.raises(zoblib.ArchiveCorruptedError):
        zoblib.verify(path)
    return str(caught.value)


@pytest.mark.parametrize("golden", ["plain.h5", "compressed.h5"])
def test_a_first_layout_golden_claiming_the_logical_layout_is_refused(tmp_path: Path, golden: str) -> None:
    path = tmp_path / golden
    shutil.copy(DATA / "v2" / golden, path)
    record = _record(path)
    for entry in record["nodes"].values():
        entry["hdf5_layout"] = "logical"
    _write_record(path, record)
    assert "layout 'logical'" in _load_error(path)


@pytest.mark.parametrize("compress", [0, 3])
def test_a_logical_archive_whose_record_lost_its_markers_is_refused(tmp_path: Path, compress: Any) -> None:
    path = tmp_path / "unmarked.h5"
    _dump(path, compress)
    record = _record(path)
    for entry in record["nodes"].values():
        del entry["hdf5_layout"]
    _write_record(path, record)
    assert "layout 'first'" in _load_error(path)


@pytest.mark.parametrize("compress", [0, 3])
def test_a_square_array_whose_datasets_were_rewritten_transposed_is_refused(
    tmp_path: Path, compress: Any
) -> None:
    # Same shape, type and chunks both ways: only the datasets' own marker tells the layouts apart.
    path = tmp_path / "square.h5"
    square = np.asfortranarray(np.arange(400 * 400, dtype=np.float64).reshape(400, 400))
    zoblib.dump({"square": square}, path, compress=compress)
    rewrite_in_first_layout(path, keep_markers=True)
    with h5py.File(path, "r") as file:
        assert file["arrays/square"].shape == (400, 400)
        assert np.array_equal(file["arrays/square"][()], square.T)  # transposed bytes
    assert "zoblib_layout is None" in _load_error(path)


def test_an_unknown_layout_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "unknown.h5"
    _dump(path, 3)
    record = _record(path)
    record["nodes"]["arrays/fortran_2d"]["hdf5_layout"] = "mirrored"
    _write_record(path, record)
    assert "unknown HDF5 layout 'mirrored'" in _load_error(path)


def test_a_wrong_zoblib_dtype_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "named.h5"
    _dump(path, 0)
    with h5py.File(path, "r+") as file:
        file["arrays/record_of_words"].attrs["zoblib_dtype"] = json.dumps([["w", "<U3"], ["t", "<M8[ms]"]])
    assert "zoblib_dtype" in _load_error(path)


# ---- checks ---------------------------------------------------------------------------------


def _flip_in_chunk(path: Path, node: str, chunk: int) -> None:
    with h5py.File(path, "r") as file:
        info = file[node].id.get_chunk_info(chunk)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset + info.size // 2)
        byte = raw.read(1)[0]
        raw.seek(info.byte_offset + info.size // 2)
        raw.write(bytes([byte ^ 0x20]))


@pytest.mark.parametrize("compress", [0, 3])
def test_a_flipped_byte_in_a_fortran_chunk_is_a_checksum_error(tmp_path: Path, compress: Any) -> None:
    path = tmp_path / "flipped.h5"
    _dump(path, compress)
    _flip_in_chunk(path, "arrays/fortran_2d", 1)
    with pytest.raises(zoblib.ChecksumError, match="fortran_2d"):
        zoblib.verify(path)
    with pytest.raises(zoblib.ChecksumError):
        zoblib.load(path)


def _spec_reader() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("spec_reader", DATA.parent / "spec_reader" / "reader.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("first_layout", [False, True], ids=["logical", "first-layout"])
@pytest.mark.parametrize("compress", [0, 3])
def test_the_spec_reader_reads_both_layouts(tmp_path: Path, compress: Any, first_layout: bool) -> None:
    path = tmp_path / "spec.h5"
    value = _dump(path, compress)
    if first_layout:
        rewrite_in_first_layout(path)
    loaded = _spec_reader().load(path)
    for name, array in value.items():
        assert loaded[name].dtype.str == array.dtype.str and loaded[name].tobytes() == array.tobytes(), name
        assert loaded[name].flags.f_contiguous == array.flags.f_contiguous, name
