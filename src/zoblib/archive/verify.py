"""``verify``: check every checksum of an archive, reading it once with bounded memory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any

from zoblib.archive.containers import open_reader
from zoblib.archive.containers.urls import is_url
from zoblib.archive.guard import reading
from zoblib.archive.progress import verify_nodes
from zoblib.archive.reader import ArchiveReader
from zoblib.progress import ProgressOption, byte_progress


def verify(
    filename: str | os.PathLike[str] | IO[bytes],
    *,
    storage_options: Mapping[str, Any] | None = None,
    progress: ProgressOption = False,
) -> None:
    """Check that every stored byte of an archive matches its checksum.

    ``load`` checks everything it reads, but an array loaded with ``mmap_mode`` is a plain
    ``np.memmap`` that nothing can check when its pages are read; ``verify`` reads the whole
    archive once (a few MiB of memory at a time) and checks it (``load(..., verify=True)``
    does the same for the arrays it maps).

    Parameters
    ----------
    filename
        The archive, as for :func:`load` (a path, a file object or an fsspec URL).
    storage_options
        For a URL: options of its fsspec file system.
    progress
        ``True`` draws a bar of the bytes checked on standard error (tqdm's when installed); a
        function is called with ``(bytes_done, bytes_total)`` as they advance (a zoblib
        extension: joblib has no ``verify``).

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
    name = source if isinstance(source, str) else str(getattr(source, "name", "<file object>"))
    if storage_options is not None and not is_url(source):
        raise ValueError(f"storage_options= only applies to URLs (s3://, memory://...), not {name!r}")
    with reading(name), open_reader(source, storage_options) as container:
        reader = ArchiveReader(container)
        with byte_progress(progress, os.path.basename(name)) as counter:
            for _ in verify_nodes(reader, counter):
                pass
