"""Archives and arrays larger than 4 GiB (ZIP64, 64-bit offsets) in every container."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import zoblib

GIB = 1 << 30


def _marked(nbytes: int, seed: int) -> tuple[np.ndarray, dict[int, int]]:
    # np.zeros maps untouched pages lazily: only the marked pages cost memory.
    array = np.zeros(nbytes, dtype=np.uint8)
    marks = {0: seed, nbytes // 3: seed + 1, nbytes - 1: seed + 2, 4 * GIB + 7: seed + 3}
    marks = {k: v for k, v in marks.items() if k < nbytes}
    for position, value in marks.items():
        array[position] = value
    return array, marks


@pytest.mark.parametrize("name", ["large.pkl", "large.zarr", "large.h5"])
def test_archive_and_array_beyond_4_gib(tmp_path: Path, name: str) -> None:
    if shutil.disk_usage(tmp_path).free < 14 * GIB:
        pytest.skip("needs 14 GiB of free disk")
    first, first_marks = _marked(4 * GIB + 4096, seed=10)  # one array beyond 4 GiB
    second, second_marks = _marked(64 << 20, seed=20)  # stored after the 4 GiB offset
    path = tmp_path / name
    zoblib.dump({"first": first, "second": second}, path, fsync=False)
    del first, second
    loaded = zoblib.load(path, mmap_mode="r")
    for key, marks in (("first", first_marks), ("second", second_marks)):
        assert isinstance(loaded[key], np.memmap)
        for position, value in marks.items():
            assert loaded[key][position] == value
        assert int(np.count_nonzero(loaded[key][-(64 << 20) :])) == sum(
            1 for p in marks if p >= loaded[key].size - (64 << 20)
        )
    if name.endswith(".pkl"):
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
        assert max(info.header_offset for info in infos.values()) > 4 * GIB
        assert max(info.file_size for info in infos.values()) > 4 * GIB
        assert path.stat().st_size > 4 * GIB
