"""The HDF5 container: h5py reads every array without zoblib; damage is reported clearly."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc, Zstd, BZip2 and LZ4 filters in h5py)
import numpy as np
import pytest

import zoblib


def _value() -> dict[str, object]:
    rng = np.random.default_rng(3)
    return {
        "c_order": rng.standard_normal((1000, 300)),
        "f_order": np.asfortranarray(rng.integers(0, 100, (400, 500)).astype(">i4")),
        "datetimes": np.arange(200_000).astype("datetime64[ms]"),
        "unicode": np.array(["zoblib"] * 20_000),
    }


def _ref_nodes(path: Path) -> list[str]:
    with h5py.File(path, "r") as file:
        record = json.loads(file.attrs["zoblib"])
    return [ref["node"] for ref in record["refs"]]


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 4), "zstd", ("bz2", 2), "lz4"])
def test_h5py_reads_every_array_without_zoblib(tmp_path: Path, compress: object) -> None:
    path = tmp_path / "interop.h5"
    value = _value()
    zoblib.dump(value, path, compress=compress, pack_threshold=0)  # one dataset per array
    nodes = _ref_nodes(path)
    with h5py.File(path, "r") as file:
        c_order = file[nodes[0]][()]
        f_order = file[nodes[1]]
        assert np.array_equal(c_order, value["c_order"])
        # Every array in its own shape and, where h5py has one, its own type (the logical layout).
        assert f_order.shape == (400, 500) and f_order.dtype == np.dtype(">i4")
        assert np.array_equal(f_order[()], value["f_order"])
        datetimes = file[nodes[2]]
        assert datetimes.dtype == np.dtype("<M8[ms]") and "zoblib_dtype" not in datetimes.attrs
        assert np.array_equal(datetimes[()], value["datetimes"])
        assert np.array_equal(file[nodes[3]][()], value["unicode"])
        assert all(file[node].attrs["zoblib_layout"] == "logical" for node in nodes)
        if compress == 0:
            assert file[nodes[0]].chunks is None and "crc32c" in file[nodes[0]].attrs
        else:
            # zoblib checks chunks itself (CRC-32C in the record), not with HDF5's Fletcher-32.
            assert file[nodes[0]].chunks is not None and not file[nodes[0]].fletcher32


def test_missing_dataset_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "missing.h5"
    zoblib.dump(_value(), path, pack_threshold=0)
    node = _ref_nodes(path)[0]
    with h5py.File(path, "r+") as file:
        del file[node]
    with pytest.raises(zoblib.ArchiveCorruptedError, match=f"no dataset '{node}'") as caught:
        zoblib.load(path)
    assert str(path) in str(caught.value)


def test_lzma_has_no_hdf5_filter_and_gzip_stands_in_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "lzma.h5"
    value = _value()
    with pytest.warns(zoblib.ZoblibWarning, match="lzma.*no HDF5 filter.*gzip"):
        zoblib.dump(value, path, compress=("lzma", 6), pack_threshold=0)
    with h5py.File(path, "r") as file:
        assert file[_ref_nodes(path)[0]].compression == "gzip"
    assert np.array_equal(zoblib.load(path)["c_order"], value["c_order"])


def test_an_h5_file_that_is_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as file:
        file["x"] = np.arange(10)
    with pytest.raises(zoblib.ArchiveError, match="not a zoblib archive"):
        zoblib.load(path)
