"""Archives written by released format versions keep loading (tests/data/<version>/)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import zoblib
from zoblib.testing import assert_same_object

DATA = Path(__file__).parents[1] / "data"
sys.path.insert(0, str(DATA))
from make_golden_archives import GOLDEN, golden_value  # noqa: E402


@pytest.mark.parametrize("name", sorted(GOLDEN))
@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_golden_archive_loads(name: str, mmap_mode: str | None) -> None:
    path = DATA / name
    assert path.exists(), f"missing golden archive {name}: run tests/data/make_golden_archives.py"
    loaded = zoblib.load(path, mmap_mode=mmap_mode)
    assert_same_object(golden_value(), loaded, lazy_arrays=mmap_mode is not None)
    assert loaded["same_again"] is loaded["own"]
    zoblib.verify(path)


def test_golden_archives_record_format_version_1() -> None:
    import zarr

    group = zarr.open_group(DATA / "v1" / "plain.zarr", mode="r")
    assert group.attrs["zoblib"]["format_version"] == 1
    assert np.array_equal(group["arrays/0"][...], golden_value()["own"])
