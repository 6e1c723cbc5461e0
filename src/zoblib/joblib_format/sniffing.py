"""Telling a joblib file from a zoblib archive by content, whatever its name.

zoblib archives are ZIP files (``PK\\x03\\x04``), HDF5 files or ``.zarr`` folders, possibly in
a gzip, bz2, xz or lzma stream (``dump(obj, gzip.GzipFile(...))``). joblib's files are pickles,
possibly in one of six compressed streams (zlib, gzip, bz2, xz, lzma, lz4), or joblib < 0.10's
"ZF" files. So: a compressed stream's first decompressed bytes tell a ZIP from a pickle, and an
uncompressed file is a joblib file when it starts as a pickle does. Anything else is left to
the zoblib containers, whose errors name what is wrong with the file.
"""

from __future__ import annotations

import lzma
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Literal, cast

from zoblib.archive.containers.streams import (
    PrefixedStream,
    RecordingStream,
    compression_of,
    decompressing,
    is_raw_file,
    read_head,
)
from zoblib.archive.containers.zipframing import LOCAL_SIGNATURE
from zoblib.errors import ZoblibError
from zoblib.joblib_format.legacy import ZFILE_PREFIX

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: PROTO, then a protocol number: protocols 2 to 5 start so (0 and 1 have no PROTO opcode).
_PROTO = 0x80
_PROTOCOLS = range(2, 6)
#: The opcodes a protocol 0 or 1 pickle can start with: those that push a value or a mark on
#: an empty stack (pickletools' ``stack_before == []``, less the memo reads and PERSID).
_OLD_PROTOCOL_FIRST_OPCODES = frozenset(b"()FGIJKLMNSTUVX]c}")
_ZFILE_HEAD = ZFILE_PREFIX + b"0x"


@dataclass(frozen=True)
class Identified:
    """What a source holds and where to read it from.

    ``source`` is a path, or a file object positioned at the start of the content (for a
    stream that cannot seek, a new object giving back the bytes read to recognise it).
    ``compression`` is the stream compression around a joblib file, ``'zfile'`` for joblib <
    0.10's ZF files, ``None`` for an uncompressed one.
    """

    kind: Literal["zoblib", "joblib"]
    source: str | IO[bytes]
    compression: str | None = None


def looks_like_pickle(head: bytes) -> bool:
    """Whether ``head``, a file's first bytes, is how a pickle starts.

    Examples
    --------
    >>> import pickle
    >>> looks_like_pickle(pickle.dumps([1], protocol=0)), looks_like_pickle(pickle.dumps([1]))
    (True, True)
    >>> looks_like_pickle(b"PK\\x03\\x04"), looks_like_pickle(b'{"json": 1}')
    (False, False)
    """
    if len(head) >= 2 and head[0] == _PROTO:
        return head[1] in _PROTOCOLS
    return bool(head) and head[0] in _OLD_PROTOCOL_FIRST_OPCODES


def identify(source: str | IO[bytes]) -> Identified:
    """Whether ``source`` holds a zoblib archive or a joblib file, found by its first bytes.

    A path that cannot be opened, a folder, and content that is neither are ``'zoblib'``:
    the zoblib containers report what is wrong. A real file's object is identified by its
    path (``Identified.source`` is then the path), as the containers read it.

    Examples
    --------
    >>> import io, pickle
    >>> identify(io.BytesIO(pickle.dumps({"a": 1}))).kind
    'joblib'
    >>> identify(io.BytesIO(b"PK\\x03\\x04...")).kind
    'zoblib'
    """
    if isinstance(source, str):
        return _identify_path(source)
    name = getattr(source, "name", None)
    if isinstance(name, str) and is_raw_file(source) and os.path.isfile(name):
        return _identify_path(name)
    if source.seekable():
        source.seek(0)
        kind, compression = _kind(read_head(source), lambda c: _rewound_head(source, c))
        source.seek(0)
        return Identified(kind, source, compression)
    recording = RecordingStream(source)
    recorded = cast(IO[bytes], recording)
    head = read_head(recorded)
    kind, compression = _kind(
        head, lambda c: _decompressed_head(cast(IO[bytes], PrefixedStream(head, recorded)), c)
    )
    return Identified(kind, cast(IO[bytes], PrefixedStream(bytes(recording.recorded), source)), compression)


def _identify_path(path: str) -> Identified:
    try:
        with open(path, "rb") as file:
            kind, compression = _kind(read_head(file), lambda c: _rewound_head(file, c))
    except OSError:  # a folder, a missing file: the containers say which
        return Identified("zoblib", path)
    return Identified(kind, path, compression)


def _kind(
    head: bytes, decompressed_head: Callable[[str], bytes | None]
) -> tuple[Literal["zoblib", "joblib"], str | None]:
    if head.startswith((LOCAL_SIGNATURE, _HDF5_SIGNATURE[:4])):
        return "zoblib", None
    compression = compression_of(head)
    if compression is not None:
        inner = decompressed_head(compression)
        if inner is not None and looks_like_pickle(inner):
            return "joblib", compression
        return "zoblib", None  # a ZIP archive in the stream, or a damaged stream: theirs to say
    if head.startswith(_ZFILE_HEAD):
        return "joblib", "zfile"
    if looks_like_pickle(head):
        return "joblib", None
    return "zoblib", None


def _rewound_head(file: IO[bytes], compression: str) -> bytes | None:
    file.seek(0)
    return _decompressed_head(file, compression)


def _decompressed_head(compressed: IO[bytes], compression: str) -> bytes | None:
    """The first decompressed bytes of the stream ``compressed``; ``None`` if it is damaged."""
    try:
        return read_head(decompressing(compressed, compression))
    except ZoblibError:  # lz4 is not installed
        raise
    except (EOFError, OSError, ValueError, RuntimeError, zlib.error, lzma.LZMAError):
        return None  # OSError: gzip.BadGzipFile, bz2's "Invalid data stream"; RuntimeError: lz4
