"""``load(..., mmap_mode=...)``: memmaps over uncompressed arrays, LazyArray over compressed ones."""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import zoblib

#: Containers that live in a real file, so their raw chunks can be memory-mapped.
MAPPABLE = ["zip", "zarr", "zip-file-object"]


def _value() -> dict[str, Any]:
    return {
        "own": np.arange(20_000, dtype="<f8").reshape(200, 100),
        "fortran": np.asfortranarray(np.arange(12_000, dtype=">i4").reshape(120, 100)),
        "packed": [np.arange(300, dtype=np.int64) * i for i in range(3)],
        "structured": np.zeros(500, dtype=[("a", "<i4"), ("b", ">f8")]),
        "small": np.arange(5),
    }


def _dump_and_load(tmp_path: Path, container: str, mmap_mode: str | None, **options: Any) -> tuple[Any, Path]:
    path = tmp_path / ("data.zarr" if container == "zarr" else "data.pkl")
    value = _value()
    options = {"inline_threshold": 1024, "pack_threshold": 16 << 10} | options
    zoblib.dump(value, path, **options)
    if container == "zip-file-object":
        with open(path, "rb") as file:
            return zoblib.load(file, mmap_mode=mmap_mode), path
    return zoblib.load(path, mmap_mode=mmap_mode), path


def _extracted(loaded: dict[str, Any]) -> list[Any]:
    return [loaded["own"], loaded["fortran"], *loaded["packed"], loaded["structured"]]


@pytest.mark.parametrize("container", MAPPABLE)
def test_mmap_r_gives_read_only_memmaps(tmp_path: Path, container: str) -> None:
    loaded, _ = _dump_and_load(tmp_path, container, "r")
    expected = _value()
    for array, original in zip(_extracted(loaded), _extracted(expected), strict=True):
        assert isinstance(array, np.memmap)
        assert array.dtype == original.dtype and array.shape == original.shape
        np.testing.assert_array_equal(array, original)
        assert not array.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            array[(0,) * array.ndim] = original[(0,) * array.ndim]
    assert loaded["fortran"].flags.f_contiguous
    assert type(loaded["small"]) is np.ndarray  # inline: part of the skeleton


@pytest.mark.parametrize("container", MAPPABLE)
def test_packed_members_are_memmaps_over_one_region(tmp_path: Path, container: str) -> None:
    loaded, _ = _dump_and_load(tmp_path, container, "r")
    members = loaded["packed"]
    assert all(isinstance(m, np.memmap) for m in members)
    assert len({m.filename for m in members}) == 1
    offsets = sorted(m.offset for m in members)
    assert offsets[1] - offsets[0] == members[0].nbytes


def test_bytesio_cannot_be_mapped_and_loads_in_memory() -> None:
    buffer = io.BytesIO()
    zoblib.dump(_value(), buffer, inline_threshold=1024)
    with pytest.warns(UserWarning, match="In memory persistence is not compatible with mmap_mode"):
        loaded = zoblib.load(io.BytesIO(buffer.getvalue()), mmap_mode="r")
    assert all(type(a) is np.ndarray for a in _extracted(loaded))
    np.testing.assert_array_equal(loaded["own"], _value()["own"])


@pytest.mark.parametrize("container", ["zip", "zarr"])
def test_mmap_r_plus_writes_persist(tmp_path: Path, container: str) -> None:
    loaded, path = _dump_and_load(tmp_path, container, "r+")
    assert isinstance(loaded["own"], np.memmap) and loaded["own"].flags.writeable
    loaded["own"][3, 4] = -1.0
    loaded["fortran"][0, 1] = 77
    loaded["packed"][1][5] = 12345
    for array in (loaded["own"], loaded["fortran"], loaded["packed"][1]):
        array.flush()
    del loaded
    again = zoblib.load(path, mmap_mode="r")
    assert again["own"][3, 4] == -1.0
    assert again["fortran"][0, 1] == 77
    assert again["packed"][1][5] == 12345
    assert again["packed"][2][5] == 10  # the neighbour in the pack is untouched


@pytest.mark.parametrize("container", ["zip", "zarr"])
def test_mmap_r_plus_writes_persist_and_are_reported_by_checked_reads(tmp_path: Path, container: str) -> None:
    # Documented behaviour: writes through 'r+' change bytes after their checksum was taken, so
    # memory-mapped loads see them and checked reads (load, verify) report the change clearly.
    loaded, path = _dump_and_load(tmp_path, container, "r+")
    loaded["own"][3, 4] = -1.0
    loaded["own"].flush()
    del loaded
    assert zoblib.load(path, mmap_mode="r")["own"][3, 4] == -1.0
    with pytest.raises(zoblib.ChecksumError, match=re.escape(str(path))):
        zoblib.load(path)
    with pytest.raises(zoblib.ChecksumError):
        zoblib.verify(path)


@pytest.mark.parametrize("container", ["zip", "zarr"])
def test_mmap_c_does_not_persist(tmp_path: Path, container: str) -> None:
    loaded, path = _dump_and_load(tmp_path, container, "c")
    assert isinstance(loaded["own"], np.memmap) and loaded["own"].flags.writeable
    loaded["own"][0, 0] = 99.0
    loaded["packed"][0][0] = 99
    assert loaded["own"][0, 0] == 99.0
    del loaded
    again = zoblib.load(path)
    assert again["own"][0, 0] == 0.0
    assert again["packed"][0][0] == 0


def test_invalid_mmap_mode(tmp_path: Path) -> None:
    zoblib.dump([1], tmp_path / "x.pkl")
    with pytest.raises(ValueError, match="mmap_mode"):
        zoblib.load(tmp_path / "x.pkl", mmap_mode="rw")


def test_mmap_mode_w_plus_is_taken_as_r_plus(tmp_path: Path) -> None:
    # joblib's rule: 'w+' would truncate the file, so it maps read-write instead.
    path = tmp_path / "x.pkl"
    zoblib.dump(np.arange(200_000.0), path)
    mapped = zoblib.load(path, mmap_mode="w+")
    assert isinstance(mapped, np.memmap) and mapped.mode == "r+" and mapped.flags.writeable
    np.testing.assert_array_equal(mapped, np.arange(200_000.0))


@pytest.mark.parametrize("container", ["zip", "zarr"])
def test_ensure_native_byte_order(tmp_path: Path, container: str) -> None:
    path = tmp_path / ("n.zarr" if container == "zarr" else "n.pkl")
    value = {"big": np.arange(10_000, dtype=">f8"), "record": np.zeros(3000, dtype=[("a", ">i4")])}
    zoblib.dump(value, path, inline_threshold=1024)
    assert zoblib.load(path, ensure_native_byte_order=False)["big"].dtype.str == ">f8"
    # joblib's default 'auto': native without mmap_mode, the stored order with it.
    for loaded in (zoblib.load(path), zoblib.load(path, ensure_native_byte_order=True)):
        assert loaded["big"].dtype.isnative and loaded["record"].dtype.isnative
        np.testing.assert_array_equal(loaded["big"], value["big"])
        np.testing.assert_array_equal(loaded["record"]["a"], value["record"]["a"])
    mapped = zoblib.load(path, mmap_mode="r")
    assert isinstance(mapped["big"], np.memmap) and mapped["big"].dtype.str == ">f8"
    np.testing.assert_array_equal(mapped["big"], value["big"])
    with pytest.raises(ValueError, match="Native byte ordering can only be enforced if 'mmap_mode'"):
        zoblib.load(path, mmap_mode="r", ensure_native_byte_order=True)
    with pytest.raises(ValueError, match="ensure_native_byte_order"):
        zoblib.load(path, ensure_native_byte_order="yes")


def test_ensure_native_byte_order_covers_inline_arrays(tmp_path: Path) -> None:
    zoblib.dump({"small": np.arange(10, dtype=">f8")}, tmp_path / "n.pkl")
    assert zoblib.load(tmp_path / "n.pkl", ensure_native_byte_order=True)["small"].dtype.isnative


# ---- LazyArray ------------------------------------------------------------------------------------

#: A 3-D array cut into many small chunks (80 bytes: 10 float64 along the last axis).
CHUNKED = np.arange(13 * 11 * 17, dtype="<f8").reshape(13, 11, 17) * 0.5
CHUNKED_F = np.asfortranarray(CHUNKED[:, :, ::-1])


@pytest.fixture(scope="module", params=["zip", "zarr"])
def lazy_arrays(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("lazy")
    path = directory / ("lazy.zarr" if request.param == "zarr" else "lazy.pkl")
    zoblib.dump({"c": CHUNKED, "f": CHUNKED_F}, path, compress="zlib", inline_threshold=0, chunk_nbytes=80)
    loaded: dict[str, Any] = zoblib.load(path, mmap_mode="r")
    return loaded


def test_compressed_arrays_are_lazy(lazy_arrays: dict[str, Any]) -> None:
    lazy = lazy_arrays["c"]
    assert isinstance(lazy, zoblib.LazyArray)
    assert lazy.shape == CHUNKED.shape and lazy.dtype == CHUNKED.dtype
    assert lazy.ndim == 3 and len(lazy) == 13 and lazy.size == CHUNKED.size and lazy.nbytes == CHUNKED.nbytes
    assert "LazyArray" in repr(lazy) and "lazy" in repr(lazy)
    assert re.search(r"shape=\(13, 11, 17\)", repr(lazy))
    np.testing.assert_array_equal(lazy_arrays["f"], CHUNKED_F)


@pytest.mark.parametrize(
    "index",
    [
        0,
        -1,
        (5, 3, 2),
        (-1, -1, -1),
        slice(2, 9, 3),
        (slice(None, None, -1), 2),
        (Ellipsis, 4),
        (1, Ellipsis),
        (slice(10, 2, -2), slice(None), slice(16, None, -5)),
        (slice(100, 200),),
        (),
        Ellipsis,
        (np.int64(3), np.int32(-2)),
    ],
    ids=repr,
)
@pytest.mark.parametrize("name", ["c", "f"])
def test_basic_indexing_matches_numpy(lazy_arrays: dict[str, Any], name: str, index: Any) -> None:
    expected = CHUNKED if name == "c" else CHUNKED_F
    result = lazy_arrays[name][index]
    np.testing.assert_array_equal(result, expected[index])
    assert np.shape(result) == np.shape(expected[index])


@given(index=hnp.basic_indices(CHUNKED.shape, allow_ellipsis=True), name=st.sampled_from(["c", "f"]))
def test_random_basic_indices_match_numpy(lazy_arrays: dict[str, Any], index: Any, name: str) -> None:
    expected = (CHUNKED if name == "c" else CHUNKED_F)[index]
    result = lazy_arrays[name][index]
    assert np.shape(result) == np.shape(expected)
    assert np.asarray(result).tobytes() == np.ascontiguousarray(expected).tobytes()


@pytest.mark.parametrize(
    "index",
    [
        [0, 3, 3, -1],
        np.array([[1, 2], [0, 12]]),
        (slice(None), [0, 5]),
        CHUNKED > 100,
        (CHUNKED[:, :, 0] > 20),
        (None, 3),
        (Ellipsis, None),
        (1, [2, 3], slice(None, None, 4)),
    ],
    ids=[
        "list",
        "int-array",
        "slice-and-list",
        "mask",
        "partial-mask",
        "newaxis",
        "ellipsis-newaxis",
        "mixed",
    ],
)
def test_fancy_indexing_falls_back_to_numpy(lazy_arrays: dict[str, Any], index: Any) -> None:
    np.testing.assert_array_equal(lazy_arrays["c"][index], CHUNKED[index])


@pytest.mark.parametrize("index", [True, False, (0, True)], ids=repr)
def test_boolean_scalar_index(lazy_arrays: dict[str, Any], index: Any) -> None:
    assert np.shape(lazy_arrays["c"][index]) == np.shape(CHUNKED[index])


@pytest.mark.parametrize("index", [13, -14, (0, 11), (0, 0, 17), (0, 0, 0, 0)], ids=repr)
def test_out_of_range_indices_raise_index_error(lazy_arrays: dict[str, Any], index: Any) -> None:
    with pytest.raises(IndexError):
        CHUNKED[index]
    with pytest.raises(IndexError):
        lazy_arrays["c"][index]


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (np.asarray, CHUNKED),
        (np.array, CHUNKED),
        (np.sum, CHUNKED.sum()),
        (lambda a: np.sum(a, axis=1), CHUNKED.sum(axis=1)),
        (np.mean, CHUNKED.mean()),
        (np.sqrt, np.sqrt(CHUNKED)),
        (lambda a: np.add(a, 1), CHUNKED + 1),
        (lambda a: np.ones(CHUNKED.shape) + a, CHUNKED + 1),
        (lambda a: np.multiply.reduce(a, axis=0), np.multiply.reduce(CHUNKED, axis=0)),
        (lambda a: np.concatenate([a, a]), np.concatenate([CHUNKED, CHUNKED])),
        (lambda a: np.where(np.greater(a, 10), a, 0), np.where(CHUNKED > 10, CHUNKED, 0)),
        (lambda a: a.astype(np.float32), CHUNKED.astype(np.float32)),
        (lambda a: np.asarray(a, dtype=np.int64), CHUNKED.astype(np.int64)),
        (lambda a: [row.sum() for row in a], [row.sum() for row in CHUNKED]),
    ],
    ids=[
        "asarray",
        "array",
        "sum",
        "sum-axis",
        "mean",
        "sqrt",
        "add",
        "ndarray-plus-lazy",
        "reduce",
        "concatenate",
        "where",
        "astype",
        "asarray-dtype",
        "iterate",
    ],
)
def test_numpy_accepts_lazy_arrays(
    lazy_arrays: dict[str, Any], function: Callable[[Any], Any], expected: Any
) -> None:
    np.testing.assert_array_equal(function(lazy_arrays["c"]), expected)


@pytest.mark.parametrize(
    "operation",
    [lambda a: a * 2, lambda a: a > 10, lambda a: -a, lambda a: 1 + a],
    ids=["mul", "gt", "neg", "radd"],
)
def test_operators_work_as_on_arrays(lazy_arrays: dict[str, Any], operation: Callable[[Any], Any]) -> None:
    np.testing.assert_array_equal(operation(lazy_arrays["c"]), operation(CHUNKED))


def test_packed_compressed_members_are_lazy(tmp_path: Path) -> None:
    value = [np.arange(200.0) + i for i in range(4)]
    zoblib.dump(value, tmp_path / "p.pkl", compress=3, inline_threshold=0)
    loaded = zoblib.load(tmp_path / "p.pkl", mmap_mode="r")
    assert all(isinstance(a, zoblib.LazyArray) for a in loaded)
    for lazy, array in zip(loaded, value, strict=True):
        np.testing.assert_array_equal(lazy[::-7], array[::-7])
        np.testing.assert_array_equal(np.asarray(lazy), array)


def test_a_slice_reads_only_the_chunks_it_touches(tmp_path: Path) -> None:
    path = tmp_path / "rows.zarr"
    array = np.arange(100 * 50, dtype=np.float64).reshape(100, 50)
    zoblib.dump(array, path, compress="zlib", inline_threshold=0, pack_threshold=0, chunk_nbytes=50 * 8)
    node = zoblib.load(path, mmap_mode="r")
    chunk_files = sorted((path / "arrays" / "0" / "c").glob("*/0"), key=lambda p: int(p.parent.name))
    assert len(chunk_files) == 100  # one row per chunk
    os.remove(path / "arrays" / "0" / "c" / "90" / "0")

    lazy = zoblib.load(path, mmap_mode="r")
    np.testing.assert_array_equal(lazy[:10], array[:10])
    np.testing.assert_array_equal(lazy[5, 3:40:4], array[5, 3:40:4])
    np.testing.assert_array_equal(lazy[::7], array[::7])  # rows 0, 7, ..., 84, 91, 98
    np.testing.assert_array_equal(lazy[99:91:-1], array[99:91:-1])
    for read_row_90 in (np.asarray, lambda a: a[85:95], lambda a: a[::10], lambda a: a[90, 0], np.sum):
        with pytest.raises(zoblib.ArchiveError, match=re.escape(str(path))):
            read_row_90(lazy)
    # The LazyArray loaded before the deletion reads lazily too: it fails only on row 90.
    np.testing.assert_array_equal(node[:90], array[:90])
    with pytest.raises(zoblib.ArchiveError):
        node[90]


def test_writable_mmap_of_a_compressed_archive_warns_as_joblib(tmp_path: Path) -> None:
    # Compressed arrays come back as read-only LazyArrays (or in memory): 'r+' and 'c' cannot
    # be honoured, and joblib's warning says so; 'r' is honoured lazily, without a warning.
    path = tmp_path / "c.pkl"
    value = np.random.default_rng(0).random(10)
    zoblib.dump(value, path, compress=1)
    for mode in ("r+", "c"):
        with pytest.warns(UserWarning) as caught:
            np.testing.assert_array_equal(zoblib.load(path, mmap_mode=mode), value)
        expected = f'mmap_mode "{mode}" is not compatible with compressed file {path}.'
        assert [str(w.message) for w in caught] == [f'{expected} "{mode}" flag will be ignored.']
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(zoblib.load(path, mmap_mode="r"), value)
        zoblib.dump(value, tmp_path / "plain.pkl")
        zoblib.load(tmp_path / "plain.pkl", mmap_mode="r+")
