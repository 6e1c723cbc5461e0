"""``mmap_mode`` on joblib's files: real ``np.memmap`` into the file for uncompressed ones, as
joblib gives; compressed ones are read into memory with joblib's warning."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from joblib_helpers import COMPRESSORS, assert_alike, many_arrays

import zoblib


@pytest.fixture
def dumped(tmp_path: Path) -> Path:
    path = tmp_path / "data.pkl"
    joblib.dump(many_arrays(), path)
    return path


def _maps(value: Any) -> list[np.memmap[Any, Any]]:
    if isinstance(value, np.matrix) and isinstance(value.base, np.memmap):
        return [value.base]  # zoblib's matrix, a view of the map
    if isinstance(value, np.memmap):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [m for item in value for m in _maps(item)]
    return []


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_arrays_are_memmaps_into_the_file(dumped: Path, mode: str) -> None:
    ours = zoblib.load(dumped, mmap_mode=mode)
    theirs = joblib.load(dumped, mmap_mode=mode)
    assert_alike(ours, theirs)
    maps = _maps(ours)
    assert len(maps) == len(_maps(theirs)) > 20
    for mapped in maps:
        assert mapped.filename == os.path.abspath(dumped)
        assert mapped.mode == mode
        if mapped.size:
            assert mapped.ctypes.data % 16 == 0  # joblib >= 1.2 aligns array data
    assert type(ours["object"]) is np.ndarray  # object arrays are read into memory, as joblib's
    assert ours["other-byte-order"].dtype == theirs["other-byte-order"].dtype  # not converted
    assert not ours["other-byte-order"].dtype.isnative
    assert ours["fortran"].flags.f_contiguous


def test_r_plus_writes_through(dumped: Path) -> None:
    mapped = zoblib.load(dumped, mmap_mode="r+")
    mapped["float64"][:5] = -1.0
    mapped["fortran"][0, 0, :] = 7.0
    mapped["float64"].flush()
    mapped["fortran"].flush()
    del mapped
    again = joblib.load(dumped)
    np.testing.assert_array_equal(again["float64"][:5], -1.0)
    np.testing.assert_array_equal(again["fortran"][0, 0, :], 7.0)


def test_c_and_r_do_not_write(dumped: Path) -> None:
    before = dumped.read_bytes()
    copied = zoblib.load(dumped, mmap_mode="c")
    copied["float64"][:] = 0.0
    del copied
    with pytest.raises(ValueError, match="read-only"):
        zoblib.load(dumped, mmap_mode="r")["float64"][0] = 1.0
    assert dumped.read_bytes() == before


def test_w_plus_is_r_plus_and_keeps_the_file(dumped: Path) -> None:
    size = dumped.stat().st_size
    mapped = zoblib.load(dumped, mmap_mode="w+")
    assert mapped["big"].mode == "r+"
    assert dumped.stat().st_size == size
    np.testing.assert_array_equal(mapped["big"], joblib.load(dumped)["big"])


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_compressed_files_warn_and_load_into_memory(tmp_path: Path, compressor: str) -> None:
    path = tmp_path / "data.pkl"
    joblib.dump(many_arrays(), path, compress=(compressor, 3))
    with pytest.warns(UserWarning) as ours_warned:
        ours = zoblib.load(path, mmap_mode="r")
    with pytest.warns(UserWarning) as theirs_warned:
        theirs = joblib.load(path, mmap_mode="r")
    assert [str(w.message) for w in ours_warned] == [str(w.message) for w in theirs_warned]
    assert [str(w.message) for w in ours_warned] == [
        f'mmap_mode "r" is not compatible with compressed file {path}. "r" flag will be ignored.'
    ]
    assert_alike(ours, theirs)
    assert not _maps(ours)
    # ensure_native_byte_order "auto" follows the mmap_mode asked for, as joblib's: arrays keep
    # their byte order.
    assert ours["other-byte-order"].dtype == theirs["other-byte-order"].dtype
    assert not ours["other-byte-order"].dtype.isnative


def test_native_byte_order_with_mmap_is_refused(dumped: Path) -> None:
    with pytest.raises(ValueError, match="Native byte ordering can only be enforced"):
        zoblib.load(dumped, mmap_mode="r", ensure_native_byte_order=True)


def test_a_file_written_without_padding_maps_with_joblib_s_warning(tmp_path: Path) -> None:
    # joblib < 1.2, and joblib writing to a stream without tell(), put no padding before arrays.
    golden = Path(__file__).resolve().parents[1] / "data" / "joblib" / "unpadded.pkl"
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours = zoblib.load(golden, mmap_mode="r")
    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        theirs = joblib.load(golden, mmap_mode="r")
    assert_alike(ours, theirs)
    assert len(ours_warned) == len(theirs_warned) > 0
    for warning in ours_warned:
        assert issubclass(warning.category, UserWarning)
        assert f"memmapped array of {golden}" in str(warning.message)
        assert "segmentation fault" in str(warning.message)


def test_a_truncated_file_is_not_grown_by_r_plus(tmp_path: Path) -> None:
    path = tmp_path / "data.pkl"
    joblib.dump({"x": np.arange(100_000.0)}, path)
    path.write_bytes(path.read_bytes()[:-1000])
    size = path.stat().st_size
    for mode in ("r", "r+", "c"):
        with pytest.raises(zoblib.ArchiveCorruptedError, match="truncated") as caught:
            zoblib.load(path, mmap_mode=mode)
        assert str(path) in str(caught.value)
    assert path.stat().st_size == size


def test_a_real_file_object_is_mapped(dumped: Path) -> None:
    # zoblib maps a real file's object, as it does for its own archives (joblib ignores
    # mmap_mode for file objects); in-memory and compressed file objects warn as joblib's.
    with open(dumped, "rb") as file, warnings.catch_warnings():
        warnings.simplefilter("error")
        mapped = zoblib.load(file, mmap_mode="r")
    assert isinstance(mapped["big"], np.memmap)
    assert mapped["big"].filename == os.path.abspath(dumped)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_r_plus_on_a_read_only_file_is_the_os_error(dumped: Path) -> None:
    dumped.chmod(0o444)
    if os.access(dumped, os.W_OK):
        pytest.skip("running as a user that writes read-only files (root)")
    with pytest.raises(zoblib.ArchiveError, match="Permission"):
        zoblib.load(dumped, mmap_mode="r+")
