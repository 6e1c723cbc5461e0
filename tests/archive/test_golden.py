"""Archives written by released format versions keep loading (tests/data/<version>/)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import zoblib
from zoblib.testing import assert_same_object

DATA = Path(__file__).parents[1] / "data"
sys.path.insert(0, str(DATA))
from make_golden_archives import ALL_GOLDEN, LOGICAL_HDF5, expected_value, golden_value  # noqa: E402


@pytest.mark.parametrize("name", ALL_GOLDEN)
@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_golden_archive_loads(name: str, mmap_mode: str | None) -> None:
    path = DATA / name
    assert path.exists(), f"missing golden archive {name}: run tests/data/make_golden_archives.py"
    # The golden values keep their byte order: ask for it whatever load's default.
    loaded = zoblib.load(path, mmap_mode=mmap_mode, ensure_native_byte_order=False)
    assert_same_object(expected_value(name), loaded, lazy_arrays=mmap_mode is not None)
    assert loaded["same_again"] is loaded["own"]
    zoblib.verify(path)


@pytest.mark.parametrize(("version", "own"), [(1, "arrays/0"), (2, "arrays/own")])
def test_golden_archives_record_their_format_version(version: int, own: str) -> None:
    import zarr

    group = zarr.open_group(DATA / f"v{version}" / "plain.zarr", mode="r")
    assert group.attrs["zoblib"]["format_version"] == version
    assert np.array_equal(group[own][...], golden_value()["own"])


def _record(name: str) -> dict[str, Any]:
    if name.endswith(".h5"):
        with h5py.File(DATA / name, "r") as file:
            hdf5_record: dict[str, Any] = json.loads(file.attrs["zoblib"])
        return hdf5_record
    zarr_record: dict[str, Any] = json.loads((DATA / name / "zarr.json").read_text())["attributes"]["zoblib"]
    return zarr_record


@pytest.mark.parametrize("name", [n for n in ALL_GOLDEN if n.endswith((".zarr", ".h5"))])
def test_golden_records_follow_their_json_schema(name: str) -> None:
    import jsonschema

    version = name.split("/")[0]
    schema = json.loads((DATA.parents[1] / "format_spec" / f"root_record.{version}.schema.json").read_text())
    jsonschema.validate(_record(name), schema)


@pytest.mark.parametrize("name", [n for n in ALL_GOLDEN if n.endswith(".h5")])
def test_golden_hdf5_archives_record_their_layout(name: str) -> None:
    """The first layout's archives carry no marker; the logical layout's mark every node."""
    layouts = {entry.get("hdf5_layout") for entry in _record(name)["nodes"].values()}
    assert layouts == ({"logical"} if name in LOGICAL_HDF5 else {None})


@pytest.mark.parametrize("name", sorted(LOGICAL_HDF5))
def test_h5py_reads_the_logical_golden_archives_as_they_were_dumped(name: str) -> None:
    import hdf5plugin  # noqa: F401  (the filters of compressed datasets)

    value = expected_value(name)
    with h5py.File(DATA / name, "r") as file:
        for key in (
            "fortran_2d",
            "fortran_3d",
            "stamps_ns",
            "stamps_ns_fortran",
            "durations_s",
            "words",
            "raw_void",
        ):
            dataset = file[f"arrays/{key}"]  # named after where the array sits
            assert dataset.shape == value[key].shape and dataset.dtype == value[key].dtype, key
            assert np.array_equal(dataset[()], value[key]), key
