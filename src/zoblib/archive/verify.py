"""``verify``: check every checksum of an archive, reading it once with bounded memory."""

from __future__ import annotations

import os
from typing import IO

from zoblib.archive.chunks import STREAM_PIECE_NBYTES, chunk_region
from zoblib.archive.containers import open_reader
from zoblib.archive.integrity import checksum
from zoblib.archive.nodes import ArrayNode
from zoblib.archive.reader import ArchiveReader
from zoblib.errors import ChecksumError


def verify(filename: str | os.PathLike[str] | IO[bytes]) -> None:
    """Check that every stored byte of an archive matches its checksum.

    ``load`` checks everything it reads, but an array loaded with ``mmap_mode`` is a plain
    ``np.memmap`` that nothing can check when its pages are read; ``verify`` reads the whole
    archive once (a few MiB of memory at a time) and checks it.

    Parameters
    ----------
    filename
        The archive, as for :func:`load`.

    Raises
    ------
    ChecksumError
        Naming the file and the first array whose bytes do not match their checksum.
    ArchiveError
        If the archive is otherwise damaged, truncated or not an archive.

    Examples
    --------
    >>> import os, tempfile, numpy as np, zoblib
    >>> path = os.path.join(tempfile.mkdtemp(), "checked.pkl")
    >>> _ = zoblib.dump({"x": np.ones(100_000)}, path)
    >>> zoblib.verify(path)
    """
    source = os.fspath(filename) if isinstance(filename, (str, os.PathLike)) else filename
    with open_reader(source) as container:
        reader = ArchiveReader(container)
        for node in reader.nodes.values():
            if node.codec is None:
                _verify_raw(reader, node)
            else:
                _verify_chunks(reader, node)


def _verify_raw(reader: ArchiveReader, node: ArrayNode) -> None:
    stored = reader.container.raw_checksum(node)
    if stored is None or node.nbytes == 0:
        return
    buffer = bytearray(min(node.nbytes, STREAM_PIECE_NBYTES))
    running = 0
    for start in range(0, node.nbytes, len(buffer)):
        view = memoryview(buffer)[: min(len(buffer), node.nbytes - start)]
        reader.container.read_raw_into(node, view, start)
        running = checksum(view, running)
    if running != stored:
        raise ChecksumError(reader.path, f"{node.path!r} does not match its checksum")


def _verify_chunks(reader: ArchiveReader, node: ArrayNode) -> None:
    # One chunk at a time: every read of a compressed chunk checks its checksum.
    for index in node.chunk_indices():
        reader.container.read_region(node, chunk_region(node, index))
