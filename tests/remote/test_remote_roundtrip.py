"""dump, load, verify and lazy loading at fsspec URLs, in the ZIP and .zarr containers."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import zoblib
from s3_server import S3Server
from zoblib import LazyArray

NAMES = {"zip": "data.pkl", "zarr": "data.zarr"}


def _value() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "big": rng.standard_normal((600, 500)),
        "fortran": np.asfortranarray(rng.integers(0, 100, (300, 700))),
        "small": np.arange(20_000),
        "tiny": np.arange(5),
        "text": "hello",
    }


def _check(loaded: dict[str, Any], value: dict[str, Any]) -> None:
    assert loaded.keys() == value.keys() and loaded["text"] == "hello"
    for name in ("big", "fortran", "small", "tiny"):
        np.testing.assert_array_equal(np.asarray(loaded[name]), value[name])


@dataclass
class Dumped:
    """``_value()`` dumped at ``url``; ``written`` is what ``dump`` returned."""

    url: str
    options: dict[str, Any] | None
    written: list[str]


CASES = [(container, level) for container in NAMES for level in (0, 3)]


@pytest.fixture(params=CASES, ids=[f"{container}-compress{level}" for container, level in CASES])
def dumped(remote: Any, request: pytest.FixtureRequest) -> Dumped:
    """An archive in each container, uncompressed and compressed, in each store."""
    container, compress = request.param
    make_url, options = remote
    url = make_url(NAMES[container])
    written = zoblib.dump(_value(), url, compress=compress, storage_options=options)
    return Dumped(url, options, written)


def test_dump_load_verify(dumped: Dumped) -> None:
    assert dumped.written == [dumped.url]
    _check(zoblib.load(dumped.url, storage_options=dumped.options), _value())
    zoblib.verify(dumped.url, storage_options=dumped.options)


def test_mmap_mode_gives_lazy_arrays(dumped: Dumped) -> None:
    value = _value()
    loaded = zoblib.load(dumped.url, mmap_mode="r", storage_options=dumped.options)
    assert isinstance(loaded["big"], LazyArray) and isinstance(loaded["fortran"], LazyArray)
    np.testing.assert_array_equal(loaded["big"][17:321:3, 5:400], value["big"][17:321:3, 5:400])
    np.testing.assert_array_equal(loaded["big"][-1, ::-2], value["big"][-1, ::-2])
    np.testing.assert_array_equal(loaded["fortran"][:, 650:3:-7], value["fortran"][:, 650:3:-7])
    np.testing.assert_array_equal(loaded["small"][100:200], value["small"][100:200])
    _check(loaded, value)
    checked = zoblib.load(dumped.url, mmap_mode="r", verify=True, storage_options=dumped.options)
    _check(checked, value)


def test_lazy_array_pickles_by_reference(remote: Any) -> None:
    make_url, options = remote
    url = make_url("lazy.pkl")
    array = np.arange(2_000_000, dtype=np.float64)
    zoblib.dump(array, url, compress=3, storage_options=options)
    lazy = zoblib.load(url, mmap_mode="r", storage_options=options)
    data = pickle.dumps(lazy)
    assert len(data) < 4096  # the URL and options, not 16 MB of values
    again = pickle.loads(data)
    assert isinstance(again, LazyArray)
    np.testing.assert_array_equal(again[1_000_000:1_000_010], array[1_000_000:1_000_010])


def test_file_urls_are_local_paths(tmp_path: Any) -> None:
    url = f"file://{tmp_path}/data.pkl"
    zoblib.dump({"x": np.arange(1_000_000.0)}, url)
    assert (tmp_path / "data.pkl").is_file()
    mapped = zoblib.load(url, mmap_mode="r")["x"]
    assert isinstance(mapped, np.memmap) and float(mapped[-1]) == 999_999.0
    zoblib.verify(url)


def test_storage_options_need_a_url(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="only applies to URLs"):
        zoblib.dump(1, str(tmp_path / "x.pkl"), storage_options={"anon": True})
    with pytest.raises(ValueError, match="only applies to URLs"):
        zoblib.load(str(tmp_path / "x.pkl"), storage_options={"anon": True})


def test_zarr_python_reads_the_remote_store(remote: Any) -> None:
    zarr = pytest.importorskip("zarr")
    make_url, options = remote
    url = make_url("model.zarr")
    value = {"weights": np.arange(1_200_000, dtype=np.float32).reshape(1200, 1000)}
    zoblib.dump(value, url, compress=3, storage_options=options)
    group = zarr.open_group(url, mode="r", storage_options=options)
    np.testing.assert_array_equal(group["arrays/weights"][:], value["weights"])
    np.testing.assert_array_equal(group["arrays/weights"][5:7, 10:20], value["weights"][5:7, 10:20])


FRESH_PROCESS = """
import pickle, sys
import numpy as np
lazy = pickle.load(open(sys.argv[1], "rb"))
print(type(lazy).__name__, float(np.asarray(lazy[1_000_000:1_000_100]).sum()))
"""


def test_a_lazy_array_opens_again_in_a_fresh_process(s3: S3Server, tmp_path: Any) -> None:
    url = s3.url("shared.pkl")
    array = np.arange(3_000_000, dtype=np.float64)
    zoblib.dump({"x": array}, url, compress=3, storage_options=s3.options)
    lazy = zoblib.load(url, mmap_mode="r", storage_options=s3.options)["x"]
    pickled = tmp_path / "lazy.pickle"
    pickled.write_bytes(pickle.dumps(lazy))
    assert pickled.stat().st_size < 4096
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(pickled)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.stdout.split() == ["LazyArray", str(float(array[1_000_000:1_000_100].sum()))], done.stderr


def test_writable_mmap_modes_warn_at_urls(memory_url: Any) -> None:
    url = memory_url("data.pkl")
    zoblib.dump({"x": np.arange(1 << 20)}, url)
    with pytest.warns(UserWarning, match="read-only LazyArrays"):
        loaded = zoblib.load(url, mmap_mode="r+")
    assert isinstance(loaded["x"], LazyArray)
