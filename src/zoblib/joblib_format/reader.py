"""Loading a joblib file: open the stream, decompress it, unpickle it, translate its errors."""

from __future__ import annotations

import io
import lzma
import pickle
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

from zoblib.archive.containers.streams import decompressing
from zoblib.archive.guard import reading as translating_errors
from zoblib.errors import ArchiveCorruptedError, ArchiveError, ZoblibError
from zoblib.joblib_format.arrays import JoblibReading
from zoblib.joblib_format.legacy import read_zfile
from zoblib.joblib_format.unpickler import JoblibUnpickler

#: Makes the unpickler of a joblib file: ``(stream, reading) -> unpickler`` (a subclass of
#: :class:`JoblibUnpickler`, or a ``functools.partial`` of one with its options).
UnpicklerFactory = Callable[[IO[bytes], JoblibReading], JoblibUnpickler]

#: joblib's words, kept because callers match them (joblib's own tests do).
PYTHON2_MESSAGE = "You may be trying to read with python 3 a joblib pickle generated with python 2."
_LEGACY_MESSAGE = (
    "The file '{}' has been generated with a joblib version less than 0.10. "
    "Please regenerate this pickle file."
)
#: What a damaged or truncated stream raises, by layer: pickle, the decompressors (gzip's
#: BadGzipFile and bz2's invalid data are OSErrors, lz4's a RuntimeError).
_DAMAGE = (pickle.UnpicklingError, EOFError, zlib.error, lzma.LZMAError, OSError, RuntimeError)
#: How much of a compressed stream is read at a time after the pickle, to reach its checksum.
_DRAIN_NBYTES = 1 << 20


def load_joblib_file(
    source: str | IO[bytes],
    *,
    compression: str | None = None,
    mmap_mode: str | None = None,
    native_byte_order: bool = True,
    unpickler: UnpicklerFactory = JoblibUnpickler,
    name: str | None = None,
) -> Any:
    """The object in the joblib file at ``source`` (a path, or a file object at its start).

    Parameters
    ----------
    source
        The file's path, or a file object positioned at the start of its content.
    compression
        The stream compression around the pickle (a name of
        :func:`~zoblib.archive.containers.streams.compression_of`), ``'zfile'`` for joblib <
        0.10's ZF files, ``None`` when uncompressed: what :func:`~.sniffing.identify` found.
    mmap_mode
        ``'r'``, ``'r+'`` or ``'c'``: arrays of an uncompressed file read by path are
        ``np.memmap`` into it, as joblib's. A compressed file is read into memory with joblib's
        warning; a file object is never mapped.
    native_byte_order
        Convert arrays to the machine's byte order (as joblib's ``ensure_native_byte_order``).
    unpickler
        Makes the unpickler (safe loading passes its guarded subclass here).
    name
        The file's name in messages (default: the path, or the file object's name).

    Returns
    -------
    object
        The object joblib dumped.

    Raises
    ------
    ArchiveCorruptedError
        If the file is damaged or truncated (the message names it).
    ArchiveError
        If it was written under Python 2 with strings Python 3 cannot read (joblib refuses
        these too).

    Examples
    --------
    >>> import os, pickle, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "old.pkl")
    >>> with open(path, "wb") as file:
    ...     pickle.dump({"a": [1, 2]}, file)  # joblib's file of an object without arrays
    >>> load_joblib_file(path)
    {'a': [1, 2]}
    """
    label = name if name is not None else _name_of(source)
    with translating_errors(label):
        if not isinstance(source, str):
            return _load(source, label, None, compression, None, native_byte_order, unpickler)
        if mmap_mode is not None and compression is not None:
            warnings.warn(
                f'mmap_mode "{mmap_mode}" is not compatible with compressed file {label}. '
                f'"{mmap_mode}" flag will be ignored.',
                stacklevel=3,
            )
            mmap_mode = None
        with open(source, "rb") as file:
            return _load(file, label, source, compression, mmap_mode, native_byte_order, unpickler)


def _load(
    file: IO[bytes],
    label: str,
    path: str | None,
    compression: str | None,
    mmap_mode: str | None,
    native_byte_order: bool,
    unpickler: UnpicklerFactory,
) -> Any:
    reading = JoblibReading(label, path, mmap_mode, native_byte_order)
    with _damage_named(label):
        if compression == "zfile":
            reading.legacy = True
            stream: IO[bytes] = io.BytesIO(read_zfile(file, label))
        elif compression is not None:
            stream = decompressing(file, compression)
        elif isinstance(file, io.RawIOBase):  # short reads: pickle needs whole ones
            stream = cast(IO[bytes], io.BufferedReader(file))
        else:
            stream = file
        loader = unpickler(stream, reading)
        try:
            value = loader.load()
        except UnicodeDecodeError as exc:
            if getattr(loader, "proto", 0) < 3:  # protocols 0-2: Python 2 wrote it
                raise ArchiveError(
                    label, f"{PYTHON2_MESSAGE} Its str objects are not text Python 3 can decode ({exc})."
                ) from exc
            raise
        if compression not in (None, "zfile") and file.seekable():
            # The pickle ends before its stream does: reading on to the stream's end checks the
            # checksum that gzip, bz2, xz and zlib keep there, so damaged array bytes are caught
            # (joblib stops at the pickle's end and never looks). Not on a pipe or a socket: the
            # decompressors look for a next stream after the last, and would wait on one left open.
            while stream.read(_DRAIN_NBYTES):
                pass
    if reading.legacy:
        warnings.warn(_LEGACY_MESSAGE.format(label), DeprecationWarning, stacklevel=4)
    return value


@contextmanager
def _damage_named(label: str) -> Iterator[None]:
    """A damaged or truncated stream's error, as an ``ArchiveCorruptedError`` naming the file."""
    try:
        yield
    except (ZoblibError, FileNotFoundError, MemoryError, RecursionError):
        raise
    except (*_DAMAGE, UnicodeDecodeError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # the disk's error (no permission, EIO), not damaged content
        raise ArchiveCorruptedError(
            label, f"the joblib file is damaged or truncated ({type(exc).__name__}: {exc})"
        ) from exc


def _name_of(source: str | IO[bytes]) -> str:
    if isinstance(source, str):
        return source
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<file object>"
