"""``verify`` finds any flipped byte of an archive's data, also where memmaps cannot."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

import zoblib

NAMES = ["checked.pkl", "checked.zarr", "checked.h5"]


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.name != "zarr.json")
    return [path]


def _value() -> dict[str, object]:
    rng = np.random.default_rng(5)
    return {"big": rng.random((600, 1000)), "mid": [rng.random(10_000) for _ in range(8)], "n": 3}


@pytest.mark.parametrize("compress", [0, 3])
@pytest.mark.parametrize("name", NAMES)
def test_verify_passes_on_a_sound_archive(tmp_path: Path, name: str, compress: int) -> None:
    path = tmp_path / name
    zoblib.dump(_value(), path, compress=compress, inline_threshold=1024)
    zoblib.verify(path)


@pytest.mark.parametrize("compress", [0, 3])
@pytest.mark.parametrize("name", NAMES)
def test_verify_catches_a_flipped_data_byte_that_a_memmap_would_not(
    tmp_path: Path, name: str, compress: int
) -> None:
    original = tmp_path / name
    zoblib.dump(_value(), original, compress=compress, inline_threshold=1024)
    # Flip a byte inside the big array's stored data (the largest file, or the middle of the file).
    damaged = tmp_path / f"damaged-{name}"
    if original.is_dir():
        shutil.copytree(original, damaged)
        target = max(_files(damaged), key=lambda p: p.stat().st_size)
    else:
        shutil.copy(original, damaged)
        target = damaged
    size = target.stat().st_size
    position = random.Random(name).randrange(size // 4, size // 2)
    with open(target, "r+b") as file:
        file.seek(position)
        byte = file.read(1)
        file.seek(position)
        file.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(zoblib.ArchiveError) as caught:
        zoblib.verify(damaged)
    assert os.fspath(damaged) in str(caught.value)
    if compress == 0:
        # A memory map hands the bytes out unchecked: that is what verify is for.
        mapped = zoblib.load(damaged, mmap_mode="r")
        assert isinstance(mapped["big"], np.memmap)
    with pytest.raises(zoblib.ArchiveError):
        zoblib.load(damaged)
