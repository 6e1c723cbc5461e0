"""Big arrays are loaded into page-aligned memory (the kernel copies cached pages 3x faster)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import zoblib
from zoblib.archive.chunks import ALIGNED_FROM_NBYTES, PAGE_BYTES


@pytest.mark.parametrize("suffix", [".pkl", ".zarr", ".h5"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_big_arrays_load_page_aligned_and_equal(tmp_path: Path, suffix: str, order: str) -> None:
    big = np.asarray(np.random.default_rng(0).random((512, 1024)), order=order)  # 4 MiB
    small = np.arange(100.0)
    path = tmp_path / f"a{suffix}"
    zoblib.dump({"big": big, "small": small}, path)
    loaded = zoblib.load(path)
    assert big.nbytes >= ALIGNED_FROM_NBYTES
    assert loaded["big"].ctypes.data % PAGE_BYTES == 0
    assert loaded["big"].flags.writeable and loaded["big"].flags.f_contiguous == (order == "F")
    np.testing.assert_array_equal(loaded["big"], big)
    np.testing.assert_array_equal(loaded["small"], small)
    loaded["big"][0, 0] = -1.0  # its own memory: the file is untouched
    assert zoblib.load(path)["big"][0, 0] == big[0, 0]
