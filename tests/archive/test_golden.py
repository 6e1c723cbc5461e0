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


@pytest.mark.parametrize(("version", "own"), [(1, "arrays/0"), (2, "arrays/own")])
def test_golden_archives_record_their_format_version(version: int, own: str) -> None:
    import zarr

    group = zarr.open_group(DATA / f"v{version}" / "plain.zarr", mode="r")
    assert group.attrs["zoblib"]["format_version"] == version
    assert np.array_equal(group[own][...], golden_value()["own"])


@pytest.mark.parametrize("name", sorted(n for n in GOLDEN if n.endswith(".zarr")))
def test_golden_records_follow_their_json_schema(name: str) -> None:
    import json

    import jsonschema

    version = name.split("/")[0]
    schema = json.loads((DATA.parents[1] / "format_spec" / f"root_record.{version}.schema.json").read_text())
    record = json.loads((DATA / name / "zarr.json").read_text())["attributes"]["zoblib"]
    jsonschema.validate(record, schema)
