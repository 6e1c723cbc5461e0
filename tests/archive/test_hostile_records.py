"""Crafted archives that once got past the reader: chunks out of place, hostile JSON and sizes.

Each case is a real archive edited the way an attacker (or a broken copy tool) would, with the
root record re-stamped where that is needed to get past its own checksum; each must end in an
``ArchiveError`` naming the file, never another exception, a crash or wrong values.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import zoblib
from zoblib.archive.integrity import RECORD_CHECKSUM_ATTRIBUTE, record_checksum
from zoblib.hashing.arrays import array_digest

OWN_NODE = {"pack_threshold": 1 << 20}  # the 1.6 MB array gets a node of its own, arrays/x
CHUNKED = {"compress": 3, "chunk_nbytes": 256 << 10, **OWN_NODE}


def _values() -> np.ndarray[Any, Any]:
    return np.random.default_rng(7).standard_normal(200_000)  # 1.6 MB: 7 chunks of 256 KiB


def _root(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((path / "zarr.json").read_bytes())
    return document


def _edit_record(path: Path, edit: Callable[[dict[str, Any]], None], *, restamp: bool = True) -> None:
    document = _root(path)
    record = document["attributes"]["zoblib"]
    edit(record)
    if restamp:
        document["attributes"][RECORD_CHECKSUM_ATTRIBUTE] = record_checksum(record)
    (path / "zarr.json").write_text(json.dumps(document))


def _fails(path: Path, call: Callable[[], Any], error: type[BaseException] = zoblib.ArchiveError) -> str:
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, zoblib.ArchiveError)
    assert str(path) in str(info.value)
    return str(info.value)


# ---- chunks tied to their place -----------------------------------------------------------------


def test_a_chunk_copied_over_another_is_caught_by_load_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    zoblib.dump({"x": _values()}, path, **CHUNKED)
    shutil.copyfile(path / "arrays/x/c/1", path / "arrays/x/c/0")
    # Each chunk still matches its own trailing CRC-32C; only the record knows where it belongs.
    assert "place" in _fails(path, lambda: zoblib.verify(path), zoblib.ChecksumError)
    _fails(path, lambda: zoblib.load(path), zoblib.ChecksumError)
    lazy = zoblib.load(path, mmap_mode="r")["x"]
    _fails(path, lambda: lazy[:10], zoblib.ChecksumError)
    np.testing.assert_array_equal(lazy[40_000:40_010], _values()[40_000:40_010])  # chunk 1 is fine


def test_two_swapped_zip_members_are_caught(tmp_path: Path) -> None:
    path = tmp_path / "s.pkl"
    zoblib.dump({"x": _values()}, path, compress=("zlib", 1), chunk_nbytes=256 << 10, **OWN_NODE)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        infos = {i.filename: i for i in archive.infolist()}
    # Swap the central-directory entries' names of two chunks: each member stays intact.
    first, second = infos["arrays/x/c/0"], infos["arrays/x/c/1"]
    start = data.index(b"PK\x01\x02")
    directory = bytes(data[start:])
    directory = directory.replace(b"arrays/x/c/0", b"arrays/x/c/X").replace(b"arrays/x/c/1", b"arrays/x/c/0")
    directory = directory.replace(b"arrays/x/c/X", b"arrays/x/c/1")
    data[start:] = directory
    path.write_bytes(bytes(data))
    assert first.filename != second.filename
    _fails(path, lambda: zoblib.verify(path), zoblib.ChecksumError)
    _fails(path, lambda: zoblib.load(path), zoblib.ChecksumError)


def test_a_duplicated_zip_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.pkl"
    zoblib.dump({"x": _values()}, path, **OWN_NODE)
    with warnings.catch_warnings(), zipfile.ZipFile(path, "a") as archive:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it is asked to write
        archive.writestr("arrays/x/c/0", b"another copy")
    message = _fails(path, lambda: zoblib.load(path), zoblib.ArchiveCorruptedError)
    assert "more than once" in message
    _fails(path, lambda: zoblib.verify(path), zoblib.ArchiveCorruptedError)


def test_a_chunk_list_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    zoblib.dump({"x": _values()}, path, **CHUNKED)
    _edit_record(path, lambda r: r["nodes"]["arrays/x"].update(chunk_crc32c="00000000"))
    _fails(path, lambda: zoblib.load(path, mmap_mode="r"), zoblib.ArchiveCorruptedError)


def test_a_version_2_record_without_its_chunk_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    zoblib.dump({"x": _values()}, path, **CHUNKED)
    _edit_record(path, lambda r: r["nodes"]["arrays/x"].pop("chunk_crc32c"))
    assert "checksums" in _fails(path, lambda: zoblib.load(path), zoblib.ArchiveCorruptedError)


def test_values_that_do_not_match_their_recorded_digest_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    x = _values()
    zoblib.dump({"x": x}, path, **CHUNKED)
    _edit_record(path, lambda r: r["refs"][0].update(digest=array_digest(x + 1)))
    assert "digest" in _fails(path, lambda: zoblib.load(path), zoblib.ChecksumError)
    # A lazy load reads nothing, so nothing can be checked yet; its slices still match chunks.
    np.testing.assert_array_equal(zoblib.load(path, mmap_mode="r")["x"][:5], x[:5])


def test_pack_references_that_overlap_are_refused_by_load_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "p.zarr"
    arrays = [np.arange(20_000.0) + i for i in range(3)]  # 160 kB each: one pack
    zoblib.dump(arrays, path)

    def overlap(record: dict[str, Any]) -> None:
        record["refs"][1]["offset"] = record["refs"][0]["offset"] + 10

    _edit_record(path, overlap)
    _fails(path, lambda: zoblib.load(path), zoblib.ArchiveCorruptedError)
    _fails(path, lambda: zoblib.verify(path), zoblib.ArchiveCorruptedError)


# ---- hostile JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_in_the_root_record(tmp_path: Path, literal: str) -> None:
    path = tmp_path / "n.zarr"
    zoblib.dump({"x": _values()}, path, **OWN_NODE)
    text = (path / "zarr.json").read_text().replace('"pickle_protocol":5', f'"pickle_protocol":{literal}')
    (path / "zarr.json").write_text(text)
    assert "not valid JSON" in _fails(path, lambda: zoblib.load(path), zoblib.ArchiveCorruptedError)


@pytest.mark.parametrize(
    "payload", ["9" * 5001, "[" * 100_000 + "]" * 100_000], ids=["5001-digit-int", "nested-100000"]
)
def test_hostile_json_in_the_root_record(tmp_path: Path, payload: str) -> None:
    path = tmp_path / "j.zarr"
    zoblib.dump({"x": _values()}, path, **OWN_NODE)
    text = (path / "zarr.json").read_text().replace('"pickle_protocol":5', f'"pickle_protocol":{payload}')
    (path / "zarr.json").write_text(text)
    _fails(path, lambda: zoblib.load(path), zoblib.ArchiveCorruptedError)
    _fails(path, lambda: zoblib.verify(path), zoblib.ArchiveCorruptedError)


@pytest.mark.parametrize("version", [0, -1, True, 2.0, "2", None])
def test_invalid_format_versions(tmp_path: Path, version: Any) -> None:
    path = tmp_path / "v.zarr"
    zoblib.dump({"x": _values()}, path, **OWN_NODE)
    _edit_record(path, lambda r: r.update(format_version=version))
    assert "format_version" in _fails(path, lambda: zoblib.load(path), zoblib.ArchiveCorruptedError)


def test_a_zip_needing_an_unknown_zip_version(tmp_path: Path) -> None:
    path = tmp_path / "z.pkl"
    zoblib.dump({"x": _values()}, path, **OWN_NODE)
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 6] = 173  # "version needed to extract" of the first central-directory entry
    path.write_bytes(bytes(data))
    _fails(path, lambda: zoblib.load(path), zoblib.ArchiveCorruptedError)


# ---- hostile sizes --------------------------------------------------------------------------

_HUGE = 10**15


def _claim_huge(record: dict[str, Any], *, chunked: bool) -> None:
    node = record["nodes"]["arrays/x"]
    node["shape"] = [_HUGE]
    node["chunk_shape"] = [node["chunk_shape"][0] if chunked else _HUGE]
    count = -(-_HUGE // node["chunk_shape"][0])
    if count <= 8:
        node["chunk_crc32c"] = node["chunk_crc32c"][:8] * count
    record["refs"][0].pop("digest")


@pytest.mark.parametrize("compress", [0, 3])
def test_a_record_claiming_a_petabyte_is_refused_before_allocating(tmp_path: Path, compress: int) -> None:
    path = tmp_path / "h.zarr"
    zoblib.dump({"x": _values()}, path, compress=compress, **OWN_NODE)
    _edit_record(path, lambda r: _claim_huge(r, chunked=False))
    # A subprocess with a 2 GiB address space: a refusal is clean, an attempt is a MemoryError.
    script = textwrap.dedent(
        f"""
        import resource, zoblib
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        for mmap_mode in (None, "r"):
            try:
                value = zoblib.load({str(path)!r}, mmap_mode=mmap_mode)
                if mmap_mode:
                    value["x"][:10]
            except zoblib.ArchiveError as exc:
                assert {str(path)!r} in str(exc), exc
                print("refused:", exc)
            else:
                raise SystemExit("loaded a petabyte")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("refused:") == 2


def test_a_record_claiming_a_petabyte_of_small_chunks_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.zarr"
    zoblib.dump({"x": _values()}, path, **CHUNKED)
    _edit_record(path, lambda r: _claim_huge(r, chunked=True))
    # 3.8 billion chunks would need a 30 GB chunk list: the record cannot claim them.
    _fails(path, lambda: zoblib.load(path, mmap_mode="r"), zoblib.ArchiveCorruptedError)


def test_an_uncompressed_node_shorter_than_claimed_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "u.zarr"
    zoblib.dump({"x": _values()}, path, **OWN_NODE)
    _edit_record(path, lambda r: r["nodes"]["arrays/x"].update(shape=[400_000], chunk_shape=[400_000]))
    assert "claims" in _fails(path, lambda: zoblib.load(path), zoblib.ArchiveCorruptedError)


@pytest.mark.parametrize("hostile", ["../outside", "arrays/../../outside", "/etc/passwd", "arrays//x"])
def test_node_paths_that_leave_the_archive_are_refused(tmp_path: Path, hostile: str) -> None:
    path = tmp_path / "p.zarr"
    zoblib.dump({"x": _values()}, path, **OWN_NODE)
    outside = tmp_path / "outside"
    shutil.copytree(path / "arrays" / "x", outside)  # a valid node, outside the archive

    def point_outside(record: dict[str, Any]) -> None:
        record["nodes"][hostile] = record["nodes"].pop("arrays/x")
        record["refs"][0]["node"] = hostile

    _edit_record(path, point_outside)
    assert "inside the archive" in _fails(path, lambda: zoblib.load(path), zoblib.ArchiveCorruptedError)
