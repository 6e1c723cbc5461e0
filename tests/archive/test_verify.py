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


def _flip_byte(path: Path, position: int) -> None:
    """Flip the lowest bit of the byte at ``position`` of ``path``, in place."""
    with open(path, "r+b") as file:
        file.seek(position)
        byte = file.read(1)
        file.seek(position)
        file.write(bytes([byte[0] ^ 0x01]))


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
    _flip_byte(target, position)
    with pytest.raises(zoblib.ArchiveError) as caught:
        zoblib.verify(damaged)
    assert os.fspath(damaged) in str(caught.value)
    if compress == 0:
        # A memory map hands the bytes out unchecked: that is what verify is for.
        mapped = zoblib.load(damaged, mmap_mode="r")
        assert isinstance(mapped["big"], np.memmap)
    with pytest.raises(zoblib.ArchiveError):
        zoblib.load(damaged)


def _flip_mapped_byte(mapped: np.memmap, position: int) -> None:  # type: ignore[type-arg]
    """Flip one byte of the file under ``mapped``, ``position`` bytes into its data."""
    _flip_byte(Path(mapped.filename), mapped.offset + position)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["big", "mid"])
@pytest.mark.parametrize("name", NAMES)
def test_load_verify_catches_a_flipped_byte_under_a_memmap(tmp_path: Path, name: str, key: str) -> None:
    path = tmp_path / name
    value = _value()
    # "big" (4.8 MB) gets an array node of its own, the "mid" arrays (80 kB each) share a pack.
    zoblib.dump(value, path, inline_threshold=1024, pack_threshold=1 << 20)
    first = zoblib.load(path, mmap_mode="r")[key]
    mapped = first if key == "big" else first[3]  # "mid" members share a pack
    assert isinstance(mapped, np.memmap)
    _flip_mapped_byte(mapped, mapped.nbytes // 2)
    del first, mapped
    # Unchecked, the memmap serves the flipped byte; verify=True refuses the archive instead.
    unchecked = zoblib.load(path, mmap_mode="r")[key]
    original = value[key] if key == "big" else value[key][3]  # type: ignore[index]
    assert not np.array_equal(unchecked if key == "big" else unchecked[3], original)
    with pytest.raises(zoblib.ChecksumError) as caught:
        zoblib.load(path, mmap_mode="r", verify=True)
    message = str(caught.value)
    assert os.fspath(path) in message
    assert ("'arrays/big'" if key == "big" else "'packs/0'") in message


@pytest.mark.parametrize("name", NAMES)
def test_load_verify_reads_lazy_arrays_chunks_at_load(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    zoblib.dump(_value(), path, compress=3, inline_threshold=1024)
    assert isinstance(zoblib.load(path, mmap_mode="r")["big"], zoblib.LazyArray)
    damaged = tmp_path / f"damaged-{name}"
    if path.is_dir():
        shutil.copytree(path, damaged)
        target = max(_files(damaged), key=lambda p: p.stat().st_size)
        position = target.stat().st_size // 2
    else:
        shutil.copy(path, damaged)
        target = damaged
        position = target.stat().st_size // 3
    _flip_byte(target, position)
    # A lazy array meets the damage only when a slice touches it; verify=True meets it at once.
    lazy = zoblib.load(damaged, mmap_mode="r")["big"]
    assert isinstance(lazy, zoblib.LazyArray)
    with pytest.raises(zoblib.ArchiveError) as caught:
        zoblib.load(damaged, mmap_mode="r", verify=True)
    assert os.fspath(damaged) in str(caught.value)


@pytest.mark.parametrize("mmap_mode", [None, "r", "c"])
@pytest.mark.parametrize("name", NAMES)
def test_load_verify_returns_the_same_object_from_a_sound_archive(
    tmp_path: Path, name: str, mmap_mode: str | None
) -> None:
    path = tmp_path / name
    value = _value()
    zoblib.dump(value, path, inline_threshold=1024)
    loaded = zoblib.load(path, mmap_mode=mmap_mode, verify=True)
    assert isinstance(loaded["big"], np.memmap) == (mmap_mode is not None)
    np.testing.assert_array_equal(loaded["big"], value["big"])
    for read, original in zip(loaded["mid"], value["mid"], strict=True):  # type: ignore[call-overload]
        np.testing.assert_array_equal(read, original)


@pytest.mark.parametrize("name", NAMES)
def test_native_byte_order_conversion_is_checked(tmp_path: Path, name: str) -> None:
    # The default load converts a big-endian array to native order: the bytes it converts are
    # checked first, so a damaged array is refused, not converted.
    path = tmp_path / name
    value = {"big": np.arange(600_000, dtype=">f8")}
    zoblib.dump(value, path)
    converted = zoblib.load(path)["big"]
    assert converted.dtype == np.dtype("=f8")
    np.testing.assert_array_equal(converted, value["big"])
    mapped = zoblib.load(path, mmap_mode="r")["big"]
    assert isinstance(mapped, np.memmap)
    _flip_mapped_byte(mapped, 12_345)
    del mapped
    with pytest.raises(zoblib.ChecksumError) as caught:
        zoblib.load(path)
    assert os.fspath(path) in str(caught.value)
