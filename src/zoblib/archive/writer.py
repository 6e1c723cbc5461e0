"""Writing one archive: pickle the skeleton, store the arrays it references, then the root."""

from __future__ import annotations

import dataclasses
import pickle
import platform
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numcodecs.abc import Codec

from zoblib._version import __version__
from zoblib.archive.chunks import ArrayData, chunk_array, storage_order
from zoblib.archive.compression import tuned_codec
from zoblib.archive.containers import ContainerWriter
from zoblib.archive.containers.base import store_node
from zoblib.archive.digests import stored_bytes_are_digested
from zoblib.archive.dtypes import can_extract
from zoblib.archive.hashlane import Digesting, hash_lane
from zoblib.archive.integrity import RECORD_CHECKSUM_ATTRIBUTE, record_checksum
from zoblib.archive.naming import Path, array_locations, node_names
from zoblib.archive.nodes import DEFAULT_CHUNK_NBYTES, ArrayNode, choose_chunk_shape
from zoblib.archive.packing import Pack, plan_packs, write_pack
from zoblib.archive.progress import CountedData
from zoblib.archive.skeleton import dumps_skeleton
from zoblib.hashing.algorithms import DEFAULT_HASH_NAME, HashObject, new_hash_object
from zoblib.hashing.arrays import array_digest, digest_string
from zoblib.progress import ByteCounter

FORMAT_VERSION = 2
#: Versions this zoblib reads.
READABLE_FORMAT_VERSIONS = (1, 2)
SKELETON_NODE = "skeleton"
ARRAYS_GROUP = "arrays"
PACKS_GROUP = "packs"


@dataclass(frozen=True)
class WriteOptions:
    """How ``dump`` lays an object out."""

    codec: Codec | None = None
    protocol: int = pickle.HIGHEST_PROTOCOL
    #: Arrays smaller than this stay inside the pickle skeleton.
    inline_threshold: int = 64 << 10
    #: Arrays smaller than this (and not inline) share packs instead of a Zarr array each; every
    #: array from 1 MiB up is a Zarr array of its own, visible to other readers as itself.
    pack_threshold: int = 1 << 20
    #: Target size of a compressed chunk.
    chunk_nbytes: int = DEFAULT_CHUNK_NBYTES
    #: Whether every chunk carries a CRC-32C (off only for scratch data).
    checksum: bool = True
    #: Whether the codec may be tuned per array on a sample chunk (integer levels).
    adaptive: bool = False


class _ArrayCollector:
    """Collects the arrays the skeleton references, each once (by identity)."""

    def __init__(self, options: WriteOptions) -> None:
        self.options = options
        self.reset()

    def reset(self) -> None:
        self.arrays: list[np.ndarray[Any, Any]] = []
        self._index_by_id: dict[int, int] = {}

    def extract(self, array: np.ndarray[Any, Any]) -> int | None:
        index = self._index_by_id.get(id(array))
        if index is not None:
            return index
        if array.size == 0 or array.nbytes < self.options.inline_threshold or not can_extract(array.dtype):
            return None
        # Keeping the array in self.arrays keeps its id from being reused while pickling.
        self.arrays.append(array)
        index = self._index_by_id[id(array)] = len(self.arrays) - 1
        return index


def write_archive(
    value: Any, container: ContainerWriter, options: WriteOptions, progress: ByteCounter | None = None
) -> None:
    """Write ``value`` as a complete archive into ``container`` (without committing it).

    ``progress`` counts the bytes of the arrays and the skeleton as they are written.
    """
    collector = _ArrayCollector(options)
    skeleton, pickler = dumps_skeleton(value, options.protocol, collector.extract, collector.reset)
    arrays = collector.arrays
    if progress is not None:
        progress.start(sum(array.nbytes for array in arrays) + len(skeleton))
    paths, names = _array_names(value, arrays)
    # Every hash of the bytes written runs on one thread, the hashing lane, batch by batch as
    # they are written: uncompressed arrays in C order get their content digest there too,
    # from the bytes they are stored as. Other digests run on a thread of their own. Both
    # release the GIL.
    streamed = _streamed_digests(arrays, options)
    with hash_lane(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoblib-digest") as digests:
        digest: dict[int, Future[str]] = {
            i: digests.submit(array_digest, a) for i, a in enumerate(arrays) if i not in streamed
        }
        refs: list[dict[str, Any]] = [{} for _ in arrays]
        nodes: dict[str, dict[str, Any]] = {}
        small = [i for i, a in enumerate(arrays) if a.nbytes < options.pack_threshold]
        for index, array in enumerate(arrays):
            if array.nbytes >= options.pack_threshold:
                node = _array_node(f"{ARRAYS_GROUP}/{names[index]}", array, options)
                if paths[index] is not None:
                    node = dataclasses.replace(node, attributes={"path": list(paths[index] or ())})
                hasher = streamed.get(index)
                feed = None if hasher is None else Digesting(0, array.nbytes, hasher)
                data = ArrayData(array, node, feed)
                counted = data if progress is None else CountedData(data, node, progress)
                node = store_node(container, node, counted)
                nodes[node.path] = node.to_manifest()
                refs[index] = {"node": node.path}
        packs: list[Pack] = plan_packs([arrays[i] for i in small], small, options)
        for number, pack in enumerate(packs):
            node = write_pack(container, f"{PACKS_GROUP}/{number}", pack, arrays, names, options, streamed)
            nodes[node.path] = node.to_manifest()
            if progress is not None:
                progress.advance(node.nbytes)
            for member in pack.members:
                shape = list(arrays[member.index].shape)
                refs[member.index] = {"node": node.path, "offset": member.offset, "shape": shape}
                refs[member.index]["order"] = member.order
                refs[member.index]["name"] = names[member.index]
        skeleton_node = _bytes_node(SKELETON_NODE, len(skeleton), options)
        skeleton_data = ArrayData(np.frombuffer(skeleton, np.uint8), skeleton_node)
        skeleton_node = store_node(container, skeleton_node, skeleton_data)
        if progress is not None:
            progress.advance(len(skeleton))
        nodes[SKELETON_NODE] = skeleton_node.to_manifest()
        for index, ref in enumerate(refs):
            hasher = streamed.get(index)
            ref["digest"] = digest[index].result() if hasher is None else digest_string(hasher)
    record = _root_record(options.protocol, pickler, nodes, refs)
    attributes = {"zoblib": record, RECORD_CHECKSUM_ATTRIBUTE: record_checksum(record)}
    container.write_root(attributes, _groups(nodes))


def _streamed_digests(arrays: list[np.ndarray[Any, Any]], options: WriteOptions) -> dict[int, HashObject]:
    """A hash object for each array whose digest is taken from its stored bytes as they are
    written (uncompressed, checksummed, C-order bytes that are exactly what the digest covers)."""
    if options.codec is not None or not options.checksum:
        return {}
    return {
        index: new_hash_object(DEFAULT_HASH_NAME)
        for index, array in enumerate(arrays)
        if stored_bytes_are_digested(array.dtype, storage_order(array), array.ndim)
    }


def _array_names(value: Any, arrays: list[np.ndarray[Any, Any]]) -> tuple[list[Path | None], list[str]]:
    """Each extracted array's path in ``value`` (if known) and its unique node name: the path,
    or the array's number where no path reaches it (a custom ``__reduce__``)."""
    if not arrays:
        return [], []
    locations = array_locations(value)
    paths = [locations.path_of(array) for array in arrays]
    names = node_names(path or (index,) for index, path in enumerate(paths))
    return paths, [name or str(index) for index, name in enumerate(names)]


def _groups(nodes: dict[str, Any]) -> list[str]:
    """Every group above the nodes (``arrays``, ``arrays/layers``, ...), parents first."""
    groups: dict[str, None] = {}
    for path in nodes:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            groups["/".join(parts[:depth])] = None
    return sorted(groups, key=lambda g: (g.count("/"), g))


def _array_node(path: str, array: np.ndarray[Any, Any], options: WriteOptions) -> ArrayNode:
    order = storage_order(array)
    target = None if options.codec is None else options.chunk_nbytes
    chunk_shape = choose_chunk_shape(array.shape, array.dtype.itemsize, order, target)
    node = ArrayNode(path, array.dtype, array.shape, chunk_shape, order, options.codec, options.checksum)
    if options.adaptive and options.codec is not None and array.size:
        sample = chunk_array(array, node, (0,) * array.ndim)
        node = dataclasses.replace(node, codec=tuned_codec(options.codec, sample))
    return node


def _bytes_node(path: str, nbytes: int, options: WriteOptions) -> ArrayNode:
    target = None if options.codec is None else options.chunk_nbytes
    shape = (nbytes,)
    return ArrayNode(
        path,
        np.dtype(np.uint8),
        shape,
        choose_chunk_shape(shape, 1, "C", target),
        "C",
        options.codec,
        options.checksum,
    )


def _root_record(
    protocol: int, pickler: str, nodes: dict[str, Any], refs: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "zoblib_version": __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "byteorder": sys.byteorder,
        "pickle_protocol": protocol,
        "pickler": pickler,
        "skeleton": SKELETON_NODE,
        "nodes": nodes,
        "refs": refs,
    }
