"""What an archive holds, read from its root record and its containers' sizes, unpickling nothing.

:func:`describe_archive` opens the archive as ``load`` does (the root record checked against
its checksum), reads the skeleton's bytes (checked) and scans their opcodes
(:func:`zoblib.safety.scan.scan_globals`); it never runs the skeleton. Stored sizes come from the
container itself: ZIP member sizes, the files of a ``.zarr`` directory, HDF5's storage size.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from zoblib.archive.containers import ContainerReader, open_reader
from zoblib.archive.guard import reading
from zoblib.archive.nodes import ArrayNode
from zoblib.archive.reader import ArchiveReader
from zoblib.cli.tables import compression_ratio
from zoblib.safety.scan import scan_globals

ARRAYS_PREFIX = "arrays/"
#: The callables that rebuild one numpy array from bytes inside a skeleton: numpy's own reduce
#: (protocols 2 to 5) under numpy 1's and numpy 2's module names, and zoblib's exact rebuild.
ARRAY_REBUILDERS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("zoblib.archive.skeleton", "rebuild_array"),
    }
)


@dataclass(frozen=True)
class NodeInfo:
    """One stored Zarr array of the archive: an array, a pack of arrays, or the skeleton."""

    path: str
    kind: str  # "array", "pack" or "skeleton"
    shape: tuple[int, ...]
    dtype: str
    order: str
    codec: dict[str, Any] | None
    chunk_shape: tuple[int, ...]
    chunks: int
    nbytes: int
    stored_nbytes: int | None
    checksum: str | None
    members: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "order": self.order,
            "codec": self.codec,
            "chunk_shape": list(self.chunk_shape),
            "chunks": self.chunks,
            "nbytes": self.nbytes,
            "stored_nbytes": self.stored_nbytes,
            "ratio": compression_ratio(self.nbytes, self.stored_nbytes),
            "checksum": self.checksum,
            "members": list(self.members),
        }


@dataclass(frozen=True)
class ArrayInfo:
    """One array of the object, by its name (its place in the object: ``layers/0/W``)."""

    name: str
    node: str
    packed: bool
    shape: tuple[int, ...]
    dtype: str
    order: str
    codec: dict[str, Any] | None
    #: The node's chunk shape; ``None`` for a packed member (it lies inside its pack's chunks).
    chunk_shape: tuple[int, ...] | None
    nbytes: int
    #: ``None`` for a packed member: its pack's chunks are compressed together.
    stored_nbytes: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "node": self.node,
            "packed": self.packed,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "order": self.order,
            "codec": self.codec,
            "chunk_shape": None if self.chunk_shape is None else list(self.chunk_shape),
            "nbytes": self.nbytes,
            "stored_nbytes": self.stored_nbytes,
            "ratio": compression_ratio(self.nbytes, self.stored_nbytes),
        }


@dataclass(frozen=True)
class ArchiveInfo:
    """Everything ``zoblib inspect`` shows about one archive."""

    path: str
    container: str
    #: Bytes the archive takes on disk (a file's size, or a directory's files).
    file_nbytes: int | None
    versions: dict[str, Any]
    skeleton: NodeInfo
    #: Arrays the skeleton rebuilds from bytes of its own (``None`` if its opcodes cannot be read).
    inline_arrays: int | None
    arrays: tuple[ArrayInfo, ...]
    nodes: tuple[NodeInfo, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "container": self.container,
            "file_nbytes": self.file_nbytes,
            **self.versions,
            "inline_arrays": self.inline_arrays,
            "arrays": [a.to_json() for a in self.arrays],
            "nodes": [n.to_json() for n in self.nodes],
            "skeleton": self.skeleton.to_json(),
        }


#: Root record keys shown as "the versions that wrote it"; absent ones are ``None``.
VERSION_KEYS = (
    "format_version",
    "zoblib_version",
    "python_version",
    "numpy_version",
    "zarr_version",
    "pickle_protocol",
    "pickler",
    "byteorder",
)


def describe_archive(path: str) -> ArchiveInfo:
    """Describe the archive at ``path`` without unpickling anything.

    Raises
    ------
    ArchiveError
        If ``path`` is not a readable archive (not found, damaged root record, newer version).

    Examples
    --------
    >>> import os, tempfile, numpy as np, zoblib
    >>> path = os.path.join(tempfile.mkdtemp(), "model.zob")
    >>> _ = zoblib.dump({"W": np.ones((512, 512)), "b": np.zeros(3)}, path, compress=3)
    >>> info = describe_archive(path)
    >>> [(a.name, a.shape, a.dtype) for a in info.arrays], info.inline_arrays
    ([('W', (512, 512), 'float64')], 1)
    """
    with reading(path), open_reader(path) as container:
        reader = ArchiveReader(container)
        sizes = _stored_sizes(container, list(reader.nodes.values()))
        skeleton_bytes = reader.read_whole(reader.skeleton).tobytes()
        inline = count_inline_arrays(skeleton_bytes)
        members = _pack_member_names(reader)
        nodes = tuple(
            _node_info(node, sizes.get(node.path), reader, members)
            for node in sorted(reader.nodes.values(), key=lambda n: n.path)
        )
        arrays = tuple(sorted(_arrays(reader, sizes), key=lambda a: name_key(a.name)))
        versions = {key: reader.record.get(key) for key in VERSION_KEYS}
        return ArchiveInfo(
            path=path,
            container=container.format_name,
            file_nbytes=disk_nbytes(path),
            versions=versions,
            skeleton=next(n for n in nodes if n.kind == "skeleton"),
            inline_arrays=inline,
            arrays=arrays,
            nodes=nodes,
        )


def count_inline_arrays(skeleton: bytes) -> int | None:
    """How many numpy arrays the pickle ``skeleton`` rebuilds from bytes of its own.

    Read from its opcodes, running nothing: the calls of :data:`ARRAY_REBUILDERS`.

    Parameters
    ----------
    skeleton
        The pickle's bytes.

    Returns
    -------
    int or None
        The count; ``None`` if ``skeleton`` is not a well-formed pickle.

    Examples
    --------
    >>> import pickle, numpy as np
    >>> count_inline_arrays(pickle.dumps({"a": np.zeros(3), "b": [np.ones(2)], "c": 1.5}))
    2
    >>> count_inline_arrays(b"not a pickle") is None
    True
    """
    try:
        calls = scan_globals(skeleton).calls
    except ValueError:
        return None
    return sum(count for name, count in calls.items() if name in ARRAY_REBUILDERS)


def name_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a name: components in order, numbers numerically (``2`` before ``10``).

    Examples
    --------
    >>> sorted(["layers/10/W", "layers/2/W", "bias"], key=name_key)
    ['bias', 'layers/2/W', 'layers/10/W']
    """
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in name.split("/"))


def codec_json(node: ArrayNode) -> dict[str, Any] | None:
    """The node's codec as numcodecs configures it (``{"id": "zstd", "level": 3, ...}``)."""
    if node.codec is None:
        return None
    return {str(k): _plain(v) for k, v in node.codec.get_config().items()}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _kind(reader: ArchiveReader, node: ArrayNode, packs: Mapping[str, object]) -> str:
    if node.path == reader.skeleton.path:
        return "skeleton"
    return "pack" if node.path in packs else "array"


def _node_info(
    node: ArrayNode, stored: int | None, reader: ArchiveReader, members: Mapping[str, tuple[str, ...]]
) -> NodeInfo:
    return NodeInfo(
        path=node.path,
        kind=_kind(reader, node, members),
        shape=node.shape,
        dtype=str(node.dtype),
        order=node.order,
        codec=codec_json(node),
        chunk_shape=node.chunk_shape,
        chunks=node.chunk_count,
        nbytes=node.nbytes,
        stored_nbytes=stored,
        checksum="crc32c" if node.checksum else None,
        members=members.get(node.path, ()),
    )


def _ref_name(ref: Any, number: int) -> str:
    if isinstance(ref.get("name"), str):
        return str(ref["name"])
    node = str(ref["node"])
    if "offset" not in ref and node.startswith(ARRAYS_PREFIX):
        return node[len(ARRAYS_PREFIX) :]
    # A packed member of an archive that recorded no names (format 1): its reference number,
    # as format 1 named the arrays stored alone and as ``dump`` names arrays no path reaches.
    return str(number)


def _pack_member_names(reader: ArchiveReader) -> dict[str, tuple[str, ...]]:
    return {
        path: tuple(_ref_name(reader.refs[number], number) for _, number in entries)
        for path, entries in reader.pack_members().items()
    }


def _arrays(reader: ArchiveReader, sizes: dict[str, int | None]) -> list[ArrayInfo]:
    arrays: list[ArrayInfo] = []
    for number, ref in enumerate(reader.refs):
        node = reader.nodes[str(ref["node"])]
        packed = "offset" in ref
        shape = tuple(int(n) for n in ref["shape"]) if packed else node.shape
        nbytes = int(np.prod(shape, dtype=np.int64)) * node.dtype.itemsize
        arrays.append(
            ArrayInfo(
                name=_ref_name(ref, number),
                node=node.path,
                packed=packed,
                shape=shape,
                dtype=str(node.dtype),
                order=str(ref["order"]) if packed else node.order,
                codec=codec_json(node),
                chunk_shape=None if packed else node.chunk_shape,
                nbytes=nbytes,
                stored_nbytes=None if packed else sizes.get(node.path),
            )
        )
    return arrays


# ---- stored sizes, from each container's own bookkeeping -------------------------------------


def _stored_sizes(container: ContainerReader, nodes: list[ArrayNode]) -> dict[str, int | None]:
    """Bytes each node's chunks take in the container (``None`` where it cannot tell)."""
    try:
        if container.format_name == "zip":
            return _zip_sizes(container.path, nodes)
        if container.format_name == "zarr":
            return {node.path: _tree_nbytes(os.path.join(container.path, node.path, "c")) for node in nodes}
        if container.format_name == "hdf5":
            with h5py.File(container.path, "r") as file:
                return {node.path: int(file[node.path].id.get_storage_size()) for node in nodes}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        pass  # a ZIP inside a gzip stream, an odd file: sizes unknown, the rest still shown
    return {}


def _zip_sizes(path: str, nodes: list[ArrayNode]) -> dict[str, int | None]:
    sizes: dict[str, int | None] = {node.path: 0 for node in nodes}
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            node, _, _ = member.filename.rpartition("/c/")  # chunk keys: <node>/c/<i>/<j>
            if node in sizes:
                sizes[node] = (sizes[node] or 0) + member.compress_size
    return sizes


def _tree_nbytes(path: str) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def disk_nbytes(path: str) -> int | None:
    """Bytes ``path`` takes on disk: a file's size, or the sum of a folder's files (``None`` on error)."""
    try:
        return _tree_nbytes(path) if os.path.isdir(path) else os.path.getsize(path)
    except OSError:
        return None
