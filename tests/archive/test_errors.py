"""Hostile and broken inputs, built from crafted files: each raises an ArchiveError naming the path.

Never a bare ``KeyError``, ``zipfile.BadZipFile``, ``EOFError`` or ``AttributeError``, never
silently wrong data. And a dump that fails leaves the previous archive and no leftovers.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numcodecs.abc import Codec

import zoblib
from zoblib.archive.integrity import RECORD_CHECKSUM_ATTRIBUTE, record_checksum
from zoblib.testing import assert_same_object

STAGING_MARK = ".zoblib-tmp-"


def _value() -> dict[str, Any]:
    return {
        "own": np.arange(30_000, dtype=np.float64),
        "packed": [np.arange(2000, dtype=np.int32) + i for i in range(3)],
        "text": "hello",
    }


def _assert_load_fails(
    path: Path, error: type[BaseException] = zoblib.ArchiveError, **load_options: Any
) -> str:
    """Loading ``path`` raises ``error`` (an ArchiveError) whose message names the path."""
    with pytest.raises(error) as info:
        zoblib.load(path, **load_options)
    assert isinstance(info.value, zoblib.ArchiveError)
    assert str(path) in str(info.value)
    return str(info.value)


def _dump(path: Path, value: Any = None, **options: Any) -> Path:
    layout = {"inline_threshold": 1024, "pack_threshold": 64 << 10}  # 'own' gets arrays/own, the rest packs/0
    zoblib.dump(_value() if value is None else value, path, **(layout | options))
    return path


def _leftovers(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if STAGING_MARK in name]


# ---- not an archive ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["missing.pkl", "missing.zarr", "no/such/dir/x.pkl"])
def test_missing_path(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(FileNotFoundError) as info:
        zoblib.load(path)
    assert isinstance(info.value, zoblib.ArchiveNotFoundError)
    assert isinstance(info.value, zoblib.ArchiveError)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00",
        np.random.default_rng(0).bytes(10_000),
        b"PK\x03\x04" + np.random.default_rng(1).bytes(500),
        b"PK\x05\x06" + bytes(18),  # an empty ZIP
        # A plain pickle loads (joblib's files are pickles, tests/joblib_files); a truncated one not.
        pickle.dumps({"a": np.arange(10)})[:-5],
        b'{"zarr_format": 3}',
    ],
    ids=[
        "empty",
        "one-byte",
        "random",
        "zip-signature-then-garbage",
        "empty-zip",
        "truncated-pickle",
        "json",
    ],
)
def test_files_that_are_not_archives(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "not-an-archive.pkl"
    path.write_bytes(content)
    _assert_load_fails(path)
    with open(path, "rb") as file, pytest.raises(zoblib.ArchiveError):
        zoblib.load(file)


def test_bytesio_that_is_not_an_archive() -> None:
    with pytest.raises(zoblib.ArchiveError):
        zoblib.load(io.BytesIO(b"not an archive at all"))


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "members",
    [
        {"hello.txt": b"hello"},
        {"zarr.json": json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}).encode()},
        {"zarr.json": json.dumps({"zarr_format": 2, "attributes": {"zoblib": {}}}).encode()},
        {
            "zarr.json": json.dumps(
                {"zarr_format": 3, "node_type": "group", "attributes": {"zoblib": 1}}
            ).encode()
        },
        {
            "zarr.json": json.dumps(
                {"zarr_format": 3, "node_type": "group", "attributes": {"zoblib": {"format_version": "1"}}}
            ).encode()
        },
    ],
    ids=["unrelated-zip", "plain-zarr-group", "zarr-v2", "zoblib-not-a-record", "version-not-int"],
)
def test_zips_that_are_not_archives(tmp_path: Path, members: dict[str, bytes]) -> None:
    _assert_load_fails(_zip(tmp_path / "other.zip", members))


def test_zip_with_deflated_members(tmp_path: Path) -> None:
    good = _dump(tmp_path / "good.pkl")
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    _assert_load_fails(_zip(tmp_path / "deflated.pkl", members, zipfile.ZIP_DEFLATED))


@pytest.mark.parametrize("content", ["empty", "files"])
def test_directories_that_are_not_archives(tmp_path: Path, content: str) -> None:
    path = tmp_path / "folder.zarr"
    path.mkdir()
    if content == "files":
        (path / "notes.txt").write_text("mine")
        (path / "zarr.json").write_text(
            json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
        )
    _assert_load_fails(path)


# ---- damaged archives ---------------------------------------------------------------------------


def _cut_points(size: int) -> list[int]:
    return [1, 30, 100, size // 4, size // 2, size - 4096, size - 100, size - 22, size - 10, size - 1]


@pytest.mark.parametrize("compress", [0, "zlib"], ids=repr)
def test_truncated_zip_archives(tmp_path: Path, compress: Any) -> None:
    good = _dump(tmp_path / "good.pkl", compress=compress)
    data = good.read_bytes()
    for cut in _cut_points(len(data)):
        truncated = tmp_path / f"cut-{cut}.pkl"
        truncated.write_bytes(data[:cut])
        _assert_load_fails(truncated)
        _assert_load_fails(truncated, mmap_mode="r")


def _central_directory_offset(data: bytes) -> int:
    end = data.rindex(b"PK\x05\x06")
    (offset,) = struct.unpack_from("<I", data, end + 16)
    if offset == 0xFFFFFFFF:  # ZIP64: the offset is in the ZIP64 end record
        zip64_end = data.rindex(b"PK\x06\x06")
        (offset,) = struct.unpack_from("<Q", data, zip64_end + 48)
    return int(offset)


def test_zip_without_central_directory(tmp_path: Path) -> None:
    data = _dump(tmp_path / "good.pkl").read_bytes()
    offset = _central_directory_offset(data)
    assert data[offset : offset + 4] == b"PK\x01\x02"
    (tmp_path / "no-directory.pkl").write_bytes(data[:offset])
    _assert_load_fails(tmp_path / "no-directory.pkl")
    # The end record kept, the directory itself gone.
    (tmp_path / "hole.pkl").write_bytes(data[:offset] + data[data.rindex(b"PK\x05\x06") :])
    _assert_load_fails(tmp_path / "hole.pkl")


def test_zip_with_bytes_cut_out_of_the_middle(tmp_path: Path) -> None:
    data = _dump(tmp_path / "good.pkl").read_bytes()
    middle = len(data) // 2
    (tmp_path / "gap.pkl").write_bytes(data[:middle] + data[middle + 5000 :])
    _assert_load_fails(tmp_path / "gap.pkl")


@pytest.mark.parametrize(
    "key",
    ["arrays/own/c/0", "packs/0/c/0", "skeleton/c/0", "zarr.json"],
)
def test_directory_archive_with_a_deleted_file(tmp_path: Path, key: str) -> None:
    path = _dump(tmp_path / "good.zarr")
    (path / key).unlink()
    _assert_load_fails(path)


def test_directory_archive_with_a_deleted_compressed_chunk(tmp_path: Path) -> None:
    path = _dump(tmp_path / "good.zarr", compress="zlib", chunk_nbytes=4096)
    chunks = sorted((path / "arrays" / "own" / "c").iterdir())
    assert len(chunks) > 10
    chunks[len(chunks) // 2].unlink()
    _assert_load_fails(path, zoblib.ArchiveCorruptedError)


@pytest.mark.parametrize("compress", [0, "zlib"], ids=repr)
@pytest.mark.parametrize("key", ["arrays/own/c/0", "packs/0/c/0", "skeleton/c/0"])
def test_a_flipped_byte_is_caught(tmp_path: Path, compress: Any, key: str) -> None:
    path = _dump(tmp_path / "good.zarr", compress=compress)
    chunk = path / key
    data = bytearray(chunk.read_bytes())
    data[len(data) // 3] ^= 0x10
    chunk.write_bytes(bytes(data))
    _assert_load_fails(path, zoblib.ArchiveCorruptedError)


@pytest.mark.parametrize("key", ["arrays/own/c/0", "packs/0/c/0", "skeleton/c/0"])
def test_a_chunk_of_the_wrong_size(tmp_path: Path, key: str) -> None:
    path = _dump(tmp_path / "good.zarr")
    chunk = path / key
    chunk.write_bytes(chunk.read_bytes()[:-100])
    _assert_load_fails(path, zoblib.ArchiveCorruptedError)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small archive in each container, to damage copies of."""
    directory = tmp_path_factory.mktemp("pristine")
    return {
        "zip": _dump(directory / "good.pkl", compress=0),
        "zarr": _dump(directory / "good.zarr", compress="zlib", chunk_nbytes=8192),
    }


@given(data=st.data())
def test_any_flipped_bit_before_the_root_record_is_caught_or_harmless(
    pristine: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Chunks and the skeleton are checksummed; other bytes there (ZIP headers' CRC and names,
    the nodes' own zarr.json) zoblib does not rely on: a load is exact or raises ArchiveError."""
    content = pristine["zip"].read_bytes()
    root_record_at = content.rindex(b'{"zarr_format":3,"node_type":"group","attributes":{"zoblib"')
    position = data.draw(st.integers(0, root_record_at - 1), label="position")
    bit = data.draw(st.integers(0, 7), label="bit")
    damaged = bytearray(content)
    damaged[position] ^= 1 << bit
    path = tmp_path_factory.mktemp("flipped") / "flipped.pkl"
    path.write_bytes(bytes(damaged))
    try:
        loaded = zoblib.load(path)
    except zoblib.ArchiveError as error:
        assert str(path) in str(error)
    else:
        assert_same_object(_value(), loaded)


@given(data=st.data())
def test_any_flipped_bit_in_a_chunk_file_is_caught(
    pristine: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    source = pristine["zarr"]
    chunks = sorted(p.relative_to(source) for p in source.rglob("c/*") if p.is_file())
    chunk = data.draw(st.sampled_from(chunks), label="chunk")
    path = tmp_path_factory.mktemp("flipped") / "flipped.zarr"
    shutil.copytree(source, path)
    content = bytearray((path / chunk).read_bytes())
    content[data.draw(st.integers(0, len(content) - 1), label="position")] ^= 1 << data.draw(
        st.integers(0, 7)
    )
    (path / chunk).write_bytes(bytes(content))
    with pytest.raises(zoblib.ArchiveCorruptedError, match=re.escape(str(path))):
        zoblib.load(path)


# ---- crafted root records ---------------------------------------------------------------------------


def _edit_root(path: Path, edit: Callable[[dict[str, Any]], Any]) -> None:
    """Apply ``edit`` to the root zarr.json document of a directory archive.

    The record's checksum is recomputed, as a writer would, so that what is tested is the
    reader's validation of the record, not the checksum (tested on its own below).
    """
    document = json.loads((path / "zarr.json").read_bytes())
    result = edit(document)
    document = document if result is None else result
    attributes = document.get("attributes") if isinstance(document, dict) else None
    if isinstance(attributes, dict) and "zoblib" in attributes:
        attributes[RECORD_CHECKSUM_ATTRIBUTE] = record_checksum(attributes["zoblib"])
    (path / "zarr.json").write_text(json.dumps(document))


def _apply(edit: Callable[[dict[str, Any]], Any], record: dict[str, Any]) -> None:
    edit(record)  # edits change the record in place; what they return is ignored


def _record(document: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = document["attributes"]["zoblib"]
    return record


def test_newer_format_version(tmp_path: Path) -> None:
    path = _dump(tmp_path / "good.zarr")
    _edit_root(path, lambda d: _record(d).update(format_version=3))
    message = _assert_load_fails(path, zoblib.ArchiveVersionError)
    assert "2" in message


def test_newer_format_version_in_a_zip(tmp_path: Path) -> None:
    good = _dump(tmp_path / "good.pkl")
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members["zarr.json"])
    document["attributes"]["zoblib"]["format_version"] = 3
    members["zarr.json"] = json.dumps(document).encode()
    _assert_load_fails(_zip(tmp_path / "v2.pkl", members), zoblib.ArchiveVersionError)


@pytest.mark.parametrize("text", ["{not json", "", "\xff\xfe", '{"zarr_format": 3, "attributes": '])
def test_invalid_json_in_the_root(tmp_path: Path, text: str) -> None:
    path = _dump(tmp_path / "good.zarr")
    (path / "zarr.json").write_bytes(text.encode("latin-1"))
    _assert_load_fails(path, zoblib.ArchiveCorruptedError)


@pytest.mark.parametrize("text", ["[1, 2]", "3", '"text"', "null"])
def test_root_json_that_is_not_an_object(tmp_path: Path, text: str) -> None:
    path = _dump(tmp_path / "good.zarr")
    (path / "zarr.json").write_text(text)
    _assert_load_fails(path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r.pop("nodes"),
        lambda r: r.pop("refs"),
        lambda r: r.pop("skeleton"),
        lambda r: r.update(skeleton="nowhere"),
        lambda r: r.update(refs=7),
        lambda r: r["nodes"]["skeleton"].update(dtype="not a dtype"),
        lambda r: r["nodes"]["skeleton"].update(shape="x"),
        lambda r: r["nodes"]["arrays/own"].update(codec={"name": "no-such-codec"}),
        lambda r: r["nodes"]["arrays/own"].update(shape=[10**6]),
        lambda r: r["nodes"]["packs/0"].pop("dtype"),
        lambda r: r["refs"].pop(),
        lambda r: r["refs"].__setitem__(0, {"node": "arrays/99"}),
        lambda r: r["refs"].__setitem__(
            1, {"node": "packs/0", "offset": 10**6, "shape": [2000], "order": "C"}
        ),
        lambda r: r["refs"].__setitem__(1, {"node": "packs/0", "offset": 0, "shape": [10**6], "order": "C"}),
    ],
    ids=[
        "no-nodes",
        "no-refs",
        "no-skeleton",
        "skeleton-not-a-node",
        "refs-not-a-list",
        "bad-dtype",
        "bad-shape",
        "unknown-codec",
        "shape-larger-than-data",
        "node-without-dtype",
        "ref-missing",
        "ref-to-missing-node",
        "member-offset-beyond-pack",
        "member-larger-than-pack",
    ],
)
@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_inconsistent_root_records(
    tmp_path: Path, edit: Callable[[dict[str, Any]], Any], mmap_mode: str | None
) -> None:
    path = _dump(tmp_path / "good.zarr")
    _edit_root(path, lambda d: _apply(edit, _record(d)))
    _assert_load_fails(path, mmap_mode=mmap_mode)


def _set_ref(index: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda record: record["refs"][index].update(fields)


WRONGLY_TYPED_ENTRIES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "nodes-a-list": lambda r: r.update(nodes=[]),
    "nodes-null": lambda r: r.update(nodes=None),
    "ref-null": lambda r: r["refs"].__setitem__(0, None),
    "ref-a-list": lambda r: r["refs"].__setitem__(0, ["arrays/own"]),
    "member-shape-null": _set_ref(1, shape=None),
    "member-shape-negative": _set_ref(1, shape=[-5]),
    "member-shape-an-object": _set_ref(1, shape={"a": 1}),
    "member-offset-null": _set_ref(1, offset=None),
    "member-offset-text": _set_ref(1, offset="x"),
    "member-order-a-list": _set_ref(1, order=[True]),
    "pack-shape-an-object": lambda r: r["nodes"]["packs/0"].update(shape={}),
    "dtype-empty-list": lambda r: r["nodes"]["skeleton"].update(dtype=[]),
    "codec-a-list": lambda r: r["nodes"]["skeleton"].update(codec=[None, 1]),
    "node-shape-negative": lambda r: r["nodes"]["arrays/own"].update(shape=[-3]),
    "member-without-shape": lambda r: r["refs"][1].pop("shape"),
    "member-without-order": lambda r: r["refs"][1].pop("order"),
    "dtype-comma-string": lambda r: r["nodes"]["arrays/own"].update(dtype=",f8"),  # one bit from "<f8"
}


def _wrongly_typed_params() -> list[Any]:
    params = []
    for name, edit in WRONGLY_TYPED_ENTRIES.items():
        for mmap_mode in (None, "r"):
            if name == "member-order-a-list" and mmap_mode is None:
                continue  # a plain read takes any order but 'F' as 'C': harmless for a 1-D member
            params.append(pytest.param(edit, mmap_mode, id=f"{name}-{mmap_mode}"))
    return params


@pytest.mark.parametrize(("edit", "mmap_mode"), _wrongly_typed_params())
def test_root_record_entries_of_the_wrong_type(
    tmp_path: Path, edit: Callable[[dict[str, Any]], Any], mmap_mode: str | None
) -> None:
    path = _dump(tmp_path / "good.zarr")
    _edit_root(path, lambda d: _apply(edit, _record(d)))
    _assert_load_fails(path, mmap_mode=mmap_mode)


@pytest.mark.parametrize(("node", "flipped"), [("arrays/own", ">f8"), ("packs/0", ">i4")])
def test_one_flipped_bit_in_the_root_record_is_caught(tmp_path: Path, node: str, flipped: str) -> None:
    path = _dump(tmp_path / "good.zarr")
    document = (path / "zarr.json").read_bytes()
    original = json.dumps(_record(json.loads(document))["nodes"][node]["dtype"]).encode()
    at = document.index(original, document.index(f'"{node}"'.encode()))
    damaged = bytearray(document)
    changed = [
        i for i, (a, b) in enumerate(zip(original, json.dumps(flipped).encode(), strict=True)) if a != b
    ]
    assert len(changed) == 1 and bin(original[changed[0]] ^ ord(flipped[changed[0] - 1])).count("1") == 1
    damaged[at + changed[0]] = ord(flipped[changed[0] - 1])
    (path / "zarr.json").write_bytes(bytes(damaged))
    _assert_load_fails(path, zoblib.ArchiveCorruptedError)


def _find_local_header(data: bytes, key: str) -> int:
    position = 0
    while True:
        position = data.index(b"PK\x03\x04", position)
        (name_length,) = struct.unpack_from("<H", data, position + 26)
        if data[position + 30 : position + 30 + name_length] == key.encode():
            return position
        position += 4


def test_zip_member_name_that_is_not_utf8(tmp_path: Path) -> None:
    data = bytearray(_dump(tmp_path / "good.pkl").read_bytes())
    directory = _central_directory_offset(bytes(data))
    name_at = data.index(b"skeleton/c/0", directory)
    data[name_at] = 0xFF  # the entry keeps its UTF-8 flag: the name no longer decodes
    (tmp_path / "bad-name.pkl").write_bytes(bytes(data))
    _assert_load_fails(tmp_path / "bad-name.pkl")


def test_local_header_pointing_past_the_end_with_mmap(tmp_path: Path) -> None:
    path = tmp_path / "far.pkl"
    zoblib.dump(np.arange(2000.0), path, inline_threshold=1024)
    data = bytearray(path.read_bytes())
    header = _find_local_header(bytes(data), "packs/0/c/0")
    struct.pack_into("<H", data, header + 28, 0xFFFF)  # a huge extra field: the data "starts" past the end
    path.write_bytes(bytes(data))
    _assert_load_fails(path)  # read() is bounds-checked: a clean ArchiveError
    _assert_load_fails(path, mmap_mode="r")


def _replace_skeleton(path: Path, skeleton: bytes) -> None:
    """Give a directory archive a new, unchecksummed and uncompressed skeleton."""
    (path / "skeleton" / "c" / "0").write_bytes(skeleton)

    def edit(document: dict[str, Any]) -> None:
        entry = _record(document)["nodes"]["skeleton"]
        entry.update(shape=[len(skeleton)], chunk_shape=[len(skeleton)], codec=None, checksum=None)
        entry.pop("chunk_crc32c", None)

    _edit_root(path, edit)


class _Reference:
    def __init__(self, pid: Any) -> None:
        self.pid = pid


class _ReferencePickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        return obj.pid if isinstance(obj, _Reference) else None


def _skeleton_referencing(*pids: Any) -> bytes:
    buffer = io.BytesIO()
    _ReferencePickler(buffer, protocol=5).dump([_Reference(pid) for pid in pids])
    return buffer.getvalue()


def test_crafted_skeleton_is_read(tmp_path: Path) -> None:
    # The crafting itself works: a skeleton referencing existing refs loads them.
    path = _dump(tmp_path / "good.zarr")
    _replace_skeleton(path, _skeleton_referencing(1, 0))
    second, first = zoblib.load(path)
    np.testing.assert_array_equal(first, _value()["own"])
    np.testing.assert_array_equal(second, _value()["packed"][0])


# A decimal string is a valid id (protocol 0 writes persistent ids as text); "4" is not there.
@pytest.mark.parametrize("pid", [4, 10**9, "4", "-1", 1.0, (0,), True], ids=repr)
def test_skeleton_referencing_a_missing_ref(tmp_path: Path, pid: Any) -> None:
    path = _dump(tmp_path / "good.zarr")
    _replace_skeleton(path, _skeleton_referencing(0, pid))
    _assert_load_fails(path, zoblib.ArchiveCorruptedError)


def test_skeleton_referencing_a_negative_ref(tmp_path: Path) -> None:
    path = _dump(tmp_path / "good.zarr")
    _replace_skeleton(path, _skeleton_referencing(-1))
    _assert_load_fails(path, zoblib.ArchiveCorruptedError)


@pytest.mark.parametrize(
    "skeleton",
    [b"", b"garbage", pickle.dumps([1, 2, 3])[:-3], b"\x80\x05\x95" + bytes(20)],
    ids=["empty", "garbage", "truncated", "zeros"],
)
def test_damaged_skeleton(tmp_path: Path, skeleton: bytes) -> None:
    path = _dump(tmp_path / "good.zarr")
    _replace_skeleton(path, skeleton)
    _assert_load_fails(path, zoblib.ArchiveCorruptedError)


# ---- dump: atomic, never over someone else's directory ----------------------------------------------


class ExplodingReduce:
    """Raises while being pickled (after the arrays before it were collected)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __reduce__(self) -> Any:
        raise self.error


class FailingCodec(Codec):  # type: ignore[misc]
    """Compresses a few chunks, then fails: the archive is half written when it raises."""

    codec_id = "zoblib-test-failing"

    def __init__(self, succeed: int = 3) -> None:
        self.succeed = succeed
        self.calls = 0

    def encode(self, buf: Any) -> Any:
        self.calls += 1
        if self.calls > self.succeed:
            raise OSError("simulated failure while writing")
        return numcodecs.Zlib(1).encode(buf)

    def decode(self, buf: Any, out: Any = None) -> Any:
        return numcodecs.Zlib(1).decode(buf, out)


def _old_archive(tmp_path: Path, name: str) -> tuple[Path, dict[str, Any]]:
    old = {"old": np.arange(50_000.0), "mid": [np.ones(5000) * i for i in range(3)]}
    path = tmp_path / name
    zoblib.dump(old, path, inline_threshold=1024)
    return path, old


def _assert_old_archive_intact(path: Path, old: dict[str, Any]) -> None:
    loaded = zoblib.load(path)
    np.testing.assert_array_equal(loaded["old"], old["old"])
    assert all(np.array_equal(a, b) for a, b in zip(loaded["mid"], old["mid"], strict=True))
    assert _leftovers(path.parent) == []


@pytest.mark.parametrize("name", ["data.pkl", "data.zarr"])
@pytest.mark.parametrize(
    "failure",
    [
        lambda: {
            "new": [np.arange(100_000.0), np.zeros(3000)],
            "boom": ExplodingReduce(RuntimeError("boom")),
        },
        lambda: [np.arange(100_000.0), ExplodingReduce(KeyboardInterrupt())],
        lambda: [np.arange(100_000.0), ExplodingReduce(TypeError("refused by pickle and cloudpickle"))],
    ],
    ids=["runtime-error", "keyboard-interrupt", "type-error"],
)
def test_failed_pickling_leaves_the_old_archive(
    tmp_path: Path, name: str, failure: Callable[[], Any]
) -> None:
    path, old = _old_archive(tmp_path, name)
    value = failure()
    with pytest.raises((RuntimeError, KeyboardInterrupt, TypeError)):
        zoblib.dump(value, path, inline_threshold=1024)
    _assert_old_archive_intact(path, old)


@pytest.mark.parametrize("name", ["data.pkl", "data.zarr"])
def test_failure_after_chunks_were_written_leaves_the_old_archive(tmp_path: Path, name: str) -> None:
    path, old = _old_archive(tmp_path, name)
    codec = FailingCodec(succeed=3)
    with pytest.raises(OSError, match="simulated"):
        zoblib.dump({"new": np.arange(1_000_000.0)}, path, compress=codec, chunk_nbytes=64 << 10)
    assert codec.calls > 3  # chunks were written before it failed
    _assert_old_archive_intact(path, old)


@pytest.mark.parametrize("name", ["data.pkl", "data.zarr"])
def test_failed_first_dump_leaves_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(RuntimeError):
        zoblib.dump([np.arange(100_000.0), ExplodingReduce(RuntimeError())], tmp_path / name)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["data.zarr", "data.pkl"])
def test_dump_over_a_directory_that_is_not_an_archive(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.mkdir()
    (path / "precious.txt").write_text("keep me")
    (path / "sub").mkdir()
    with pytest.raises(zoblib.ArchiveError) as info:
        zoblib.dump({"x": np.arange(100_000.0)}, path)
    assert str(path) in str(info.value)
    assert (path / "precious.txt").read_text() == "keep me"
    assert sorted(os.listdir(path)) == ["precious.txt", "sub"]
    assert _leftovers(tmp_path) == []


def test_dump_over_a_file_with_a_directory_name(tmp_path: Path) -> None:
    path = tmp_path / "data.zarr"
    path.write_text("a file, not a directory")
    with pytest.raises(zoblib.ArchiveError):
        zoblib.dump({"x": np.arange(100_000.0)}, path)
    assert path.read_text() == "a file, not a directory"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["data.zarr", "data.pkl"])
def test_dump_replaces_an_existing_archive(tmp_path: Path, name: str) -> None:
    path, _ = _old_archive(tmp_path, name)
    zoblib.dump({"new": np.arange(10.0)}, path)
    assert list(zoblib.load(path)) == ["new"]
    assert _leftovers(tmp_path) == []


def test_dump_into_an_empty_directory(tmp_path: Path) -> None:
    path = tmp_path / "data.zarr"
    path.mkdir()
    zoblib.dump({"x": np.arange(100_000.0)}, path)
    np.testing.assert_array_equal(zoblib.load(path)["x"], np.arange(100_000.0))


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(zoblib.ArchiveError, match="format"):
        zoblib.dump([1], tmp_path / "x.pkl", format="hdf9")
    assert os.listdir(tmp_path) == []


def test_directory_format_needs_a_path() -> None:
    with pytest.raises(zoblib.ArchiveError):
        zoblib.dump([1], io.BytesIO(), format="zarr")


def test_loaded_archive_copied_elsewhere_still_loads(tmp_path: Path) -> None:
    # Archives hold no absolute paths: moving one keeps it valid.
    path = _dump(tmp_path / "a.zarr")
    shutil.copytree(path, tmp_path / "moved.zarr")
    shutil.rmtree(path)
    np.testing.assert_array_equal(zoblib.load(tmp_path / "moved.zarr")["own"], _value()["own"])
