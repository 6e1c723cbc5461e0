"""Mutations of an archive: a hypothesis strategy per base archive, and how to apply one.

A :class:`Mutation` is plain data (its kind, a label saying where it hits, JSON-able
parameters), so a failure report is also a reproducer: ``apply_mutation(base, mutation, path)``
rebuilds the exact damaged file.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import struct
import sys
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
from hypothesis import strategies as st

from fuzzing.bases import HDF5_RECORD, HDF5_RECORD_CHECKSUM, BaseArchive, Region, copy_base, zip_layout
from zoblib.archive.integrity import record_checksum

#: Hostile JSON values: name -> the literal text put in the document.
HOSTILE: dict[str, str] = {
    "huge int 10**15": str(10**15),
    "2**64": str(2**64),
    "5001-digit int": "9" * 5001,
    "negative -1": "-1",
    "zero": "0",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "float 1.5": "1.5",
    "1e308": "1e308",
    "list nested 100000 deep": "[" * 100_000 + "]" * 100_000,
    "list nested 500 deep": "[" * 500 + "]" * 500,
    "null": "null",
    "true": "true",
    "string": '"x"',
    "path traversal": '"../../../../../../etc/passwd"',
    "long string": '"' + "A" * 100_000 + '"',
    "empty object": "{}",
    "object": '{"a": 1}',
    "empty list": "[]",
    "list of huge ints": f"[{10**15}, {10**15}]",
    "list [-1]": "[-1]",
}
_PLACEHOLDER = "\x00zoblib-fuzz-hostile\x00"
_JSON_PLACEHOLDER = json.dumps(_PLACEHOLDER)


@dataclass(frozen=True)
class Mutation:
    """One change to an archive."""

    kind: str
    label: str  # where it hits: a region, member, file or JSON path
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        shown = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in self.params.items()}
        return f"{self.kind} @ {self.label} {json.dumps(shown, sort_keys=True)}"

    @property
    def category(self) -> str:
        """The kind and where it hits, with numbers generalized (for grouping failures)."""
        label = re.sub(r"\d+", "N", self.label)
        return f"{self.kind} @ {label}"


@dataclass
class Applied:
    """What applying a mutation did: the byte ranges it changed in place (``None`` when it
    changed the file's structure instead) and notes for the report."""

    touched: list[Region] | None
    note: str = ""


# ---- the strategy ------------------------------------------------------------------------------


def mutations(base: BaseArchive) -> st.SearchStrategy[Mutation]:
    """Mutations of ``base``: hypothesis draws the kind, then where and how."""
    kinds: list[st.SearchStrategy[Mutation]] = [
        _bit_flips(base),
        _bit_flips(base),
        _overwrite(base),
        _overwrite(base),
        _truncate(base),
        _append(base),
        _json_edit(base),
        _json_edit(base),
        _json_edit(base),
    ]
    if base.container == "zip":
        if _equal_size_pairs(base):
            kinds.append(_zip_swap(base))
        kinds.append(_zip_duplicate(base))
    if base.container == "zarr":
        if _chunk_groups(base):
            kinds.append(_copy_chunk(base))
        kinds.append(st.sampled_from([f for f, _ in base.files]).map(lambda f: Mutation("delete", f)))
    return st.one_of(kinds)


def _bit_flips(base: BaseArchive) -> st.SearchStrategy[Mutation]:
    @st.composite
    def draw_flips(draw: st.DrawFn) -> Mutation:
        region = draw(st.sampled_from(base.regions))
        position = st.integers(region.start, region.stop - 1)
        flips = draw(st.lists(st.tuples(position, st.integers(0, 7)), min_size=1, max_size=3, unique=True))
        return Mutation("bit flip", region.label, {"file": region.file, "flips": [list(f) for f in flips]})

    return draw_flips()


def _overwrite(base: BaseArchive) -> st.SearchStrategy[Mutation]:
    @st.composite
    def draw_overwrite(draw: st.DrawFn) -> Mutation:
        region = draw(st.sampled_from(base.regions))
        offset = draw(st.integers(region.start, region.stop - 1))
        data = draw(
            st.one_of(
                st.binary(min_size=1, max_size=16),
                st.sampled_from([b"\x00" * 8, b"\xff" * 8, b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff" * 4]),
            )
        )
        # Clipped to the region, so that the damage is where its label says (an overwrite of
        # metadata must not spill into memory-mapped data, which nothing checks by design).
        data = data[: region.stop - offset]
        return Mutation("overwrite", region.label, {"file": region.file, "offset": offset, "data": data})

    return draw_overwrite()


def _truncate(base: BaseArchive) -> st.SearchStrategy[Mutation]:
    @st.composite
    def draw_truncate(draw: st.DrawFn) -> Mutation:
        region = draw(st.sampled_from(base.regions))
        size = draw(st.integers(region.start, region.stop - 1))
        return Mutation("truncate", region.label, {"file": region.file, "size": size})

    return draw_truncate()


def _append(base: BaseArchive) -> st.SearchStrategy[Mutation]:
    @st.composite
    def draw_append(draw: st.DrawFn) -> Mutation:
        name, size = draw(st.sampled_from(base.files))
        # Either random bytes or a copy of the file's own tail (a second ZIP end record, ...).
        tail = draw(st.one_of(st.none(), st.integers(1, min(size, 200)) if size else st.none()))
        params: dict[str, Any] = {"file": name}
        if tail is None:
            params["data"] = draw(st.binary(min_size=1, max_size=256))
        else:
            params["tail_copy"] = tail
        return Mutation("append", name or "end of file", params)

    return draw_append()


def _json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_paths(item, (*prefix, index))


def _json_edit(base: BaseArchive) -> st.SearchStrategy[Mutation]:
    documents = sorted(base.documents)
    root = [d for d in documents if d in ("zarr.json", HDF5_RECORD)]

    @st.composite
    def draw_edit(draw: st.DrawFn) -> Mutation:
        # The root record half of the time: it is what the reader trusts.
        if root and draw(st.booleans()):
            document = draw(st.sampled_from(root))
        else:
            document = draw(st.sampled_from(documents))
        paths = list(_json_paths(base.documents[document]))
        path = draw(st.sampled_from(paths))
        hostile = draw(st.sampled_from(sorted(HOSTILE)))
        restamp = draw(st.booleans()) if _in_record(document, path) else False
        label = f"{document}:/{'/'.join(map(str, path))}"
        params = {"document": document, "path": list(path), "value": hostile, "restamp": restamp}
        return Mutation("json edit", label, params)

    return draw_edit()


def _in_record(document: str, path: tuple[Any, ...]) -> bool:
    if document == HDF5_RECORD:
        return True
    return document == "zarr.json" and path[:2] == ("attributes", "zoblib")


def _equal_size_pairs(base: BaseArchive) -> list[tuple[str, str]]:
    return [
        (a, b)
        for i, (a, size_a) in enumerate(base.members)
        for b, size_b in base.members[i + 1 :]
        if size_a == size_b and size_a > 0
    ]


def _zip_swap(base: BaseArchive) -> st.SearchStrategy[Mutation]:
    pairs = _equal_size_pairs(base)
    return st.sampled_from(pairs).map(
        lambda p: Mutation("zip swap", f"{p[0]} <-> {p[1]}", {"members": list(p)})
    )


def _zip_duplicate(base: BaseArchive) -> st.SearchStrategy[Mutation]:
    names = [name for name, _ in base.members]

    @st.composite
    def draw_duplicate(draw: st.DrawFn) -> Mutation:
        name = draw(st.sampled_from(names))
        source = draw(st.sampled_from(names))
        where = draw(st.sampled_from(["before", "after", "end"]))
        label = f"{name} (data of {source}, {where})"
        return Mutation("zip duplicate", label, {"member": name, "source": source, "where": where})

    return draw_duplicate()


def _chunk_groups(base: BaseArchive) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name, _ in base.files:
        if "/c/" in name:
            groups.setdefault(name.split("/c/")[0], []).append(name)
    return {node: files for node, files in groups.items() if len(files) > 1}


def _copy_chunk(base: BaseArchive) -> st.SearchStrategy[Mutation]:
    groups = _chunk_groups(base)

    @st.composite
    def draw_copy(draw: st.DrawFn) -> Mutation:
        node = draw(st.sampled_from(sorted(groups)))
        source, target = draw(st.permutations(groups[node]))[:2]
        return Mutation("copy chunk", f"{source} -> {target}", {"source": source, "target": target})

    return draw_copy()


# ---- applying one -------------------------------------------------------------------------------


def apply_mutation(base: BaseArchive, mutation: Mutation, target: Path) -> Applied:
    """Write a copy of ``base`` with ``mutation`` applied at ``target``."""
    params = mutation.params
    kind = mutation.kind
    if kind == "zip swap":
        copy_base(base, target)
        return _swap_members(target, *params["members"])
    if kind == "zip duplicate":
        _rebuild_zip(base.path, target, duplicate=(params["member"], params["source"], params["where"]))
        return Applied(None)
    if kind == "json edit":
        return _edit_json(base, target, params)
    copy_base(base, target)
    if kind == "copy chunk":
        shutil.copyfile(target / params["source"], target / params["target"])
        size = (target / params["target"]).stat().st_size
        return Applied([Region(params["target"], 0, size, params["target"])])
    if kind == "delete":
        (target / mutation.label).unlink()
        return Applied(None)
    file = target / params["file"] if params["file"] else target
    if kind == "bit flip":
        with open(file, "r+b") as handle:
            for offset, bit in params["flips"]:
                handle.seek(offset)
                byte = handle.read(1)[0]
                handle.seek(offset)
                handle.write(bytes([byte ^ (1 << bit)]))
        return Applied([Region(params["file"], o, o + 1, "") for o, _ in params["flips"]])
    if kind == "overwrite":
        offset = params["offset"]
        with open(file, "r+b") as handle:
            handle.seek(offset)
            before = handle.read(len(params["data"]))
            handle.seek(offset)
            handle.write(params["data"][: len(before)])
        # Only the bytes that changed count (an overwrite may spill into a neighbour unchanged).
        changed = [offset + i for i, (a, b) in enumerate(zip(before, params["data"], strict=False)) if a != b]
        return Applied([Region(params["file"], o, o + 1, "") for o in changed])
    if kind == "truncate":
        with open(file, "r+b") as handle:
            handle.truncate(params["size"])
        return Applied(None)
    if kind == "append":
        content = file.read_bytes()
        data = params["data"] if "data" in params else content[-params["tail_copy"] :]
        with open(file, "ab") as handle:
            handle.write(data)
        return Applied(None)
    raise ValueError(f"unknown mutation kind {kind!r}")


def _swap_members(path: Path, first: str, second: str) -> Applied:
    offsets = {info.filename: (offset, info.file_size) for info, offset in zip_layout(path)}
    (a, size), (b, _) = offsets[first], offsets[second]
    with open(path, "r+b") as handle:
        handle.seek(a)
        data_a = handle.read(size)
        handle.seek(b)
        data_b = handle.read(size)
        handle.seek(a)
        handle.write(data_b)
        handle.seek(b)
        handle.write(data_a)
    return Applied([Region("", a, a + size, first), Region("", b, b + size, second)])


def _rebuild_zip(
    source: Path,
    target: Path,
    *,
    replace: dict[str, bytes] | None = None,
    duplicate: tuple[str, str, str] | None = None,
) -> None:
    """Copy a ZIP file member by member (chunk data still 4096-aligned), with members'
    contents replaced, or one member's entry duplicated with the data of ``source``."""
    with zipfile.ZipFile(source) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    contents = dict(entries)
    if replace:
        entries = [(name, replace.get(name, data)) for name, data in entries]
    if duplicate is not None:
        member, donor, where = duplicate
        index = [name for name, _ in entries].index(member)
        position = {"before": index, "after": index + 1, "end": len(entries)}[where]
        entries.insert(position, (member, contents[donor]))
    with warnings.catch_warnings(), zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as out:
        warnings.simplefilter("ignore")  # "Duplicate name": that is the point
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            if "/c/" in name:
                assert out.fp is not None
                fixed = out.fp.tell() + 30 + len(name.encode()) + 4
                padding = -fixed % 4096
                info.extra = struct.pack("<HH", 0xD935, padding) + bytes(padding)
            out.writestr(info, data)


@contextlib.contextmanager
def _unlimited_int_digits() -> Iterator[None]:
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(previous)


def _hostile_value(name: str) -> Any:
    """The Python value of a hostile literal, or the placeholder when Python cannot hold it."""
    try:
        with _unlimited_int_digits():
            return json.loads(HOSTILE[name])
    except RecursionError:
        return _PLACEHOLDER


def _set_path(document: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    holder = document
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return document


def _edit_json(base: BaseArchive, target: Path, params: dict[str, Any]) -> Applied:
    name, path, hostile = params["document"], params["path"], params["value"]
    original = base.documents[name]
    edited = _set_path(json.loads(json.dumps(original)), path, _PLACEHOLDER)
    note = ""
    stamp: str | None = None
    if params["restamp"]:
        record = edited if name == HDF5_RECORD else edited["attributes"]["zoblib"]
        real = _set_path(
            json.loads(json.dumps(record)), path if name == HDF5_RECORD else path[2:], _hostile_value(hostile)
        )
        try:
            if _hostile_value(hostile) == _PLACEHOLDER:
                raise RecursionError(f"{hostile} is too deep for Python's json")
            with _unlimited_int_digits():
                stamp = record_checksum(real)
        except (ValueError, RecursionError) as exc:
            note = f"cannot re-stamp the record ({type(exc).__name__}): the old checksum stays"
        if stamp is not None and name != HDF5_RECORD:
            edited["attributes"]["zoblib_crc32c"] = stamp
    text = json.dumps(edited, separators=(",", ":")).replace(_JSON_PLACEHOLDER, HOSTILE[hostile])
    if base.container == "zip":
        _rebuild_zip(base.path, target, replace={name: text.encode()})
    elif base.container == "zarr":
        copy_base(base, target)
        (target / name).write_text(text)
    else:
        copy_base(base, target)
        attribute = name.lstrip("@")
        with h5py.File(target, "r+") as file:
            file.attrs[attribute] = text
            if stamp is not None and name == HDF5_RECORD:
                file.attrs[HDF5_RECORD_CHECKSUM.lstrip("@")] = json.dumps(stamp)
    return Applied(None, note)
