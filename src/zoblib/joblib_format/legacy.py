"""joblib < 0.10's formats: arrays in files beside the pickle, and "ZF" zlib files.

- Uncompressed (``NDArrayWrapper``): each array is a ``.npy`` file named in the pickle, in the
  pickle's folder (``model.pkl_01.npy``); an object array's ``.npy`` holds a pickle.
- Compressed: the pickle itself is a ZF file, and each big array's raw bytes another ZF file
  beside it (``ZNDArrayWrapper``, ``model.pkl_01.npy.z``).

A ZF file is ``b"ZF"``, the uncompressed length as ``hex()`` text padded with spaces to 19
characters (one more space in joblib <= 0.8.4 under Python 2), then one zlib stream.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from zoblib.archive.guard import check_allocation
from zoblib.errors import ArchiveCorruptedError, ArchiveError
from zoblib.joblib_format.arrays import JoblibReading, native_byte_order, with_subclass
from zoblib.joblib_format.wrappers import NDArrayWrapper, ZNDArrayWrapper

ZFILE_PREFIX = b"ZF"
#: ``len(hex(2**64))``: the width of a ZF file's length field.
_LENGTH_NBYTES = 19


def read_zfile(file: IO[bytes], name: str) -> bytes:
    """The uncompressed content of the ZF file ``file`` (read from its start).

    Raises
    ------
    ArchiveCorruptedError
        If the header, the zlib stream or the length is wrong (the message names ``name``).

    Examples
    --------
    >>> import io, zlib
    >>> zfile = b"ZF" + hex(5).ljust(19).encode() + zlib.compress(b"hello")
    >>> read_zfile(io.BytesIO(zfile), "model.pkl")
    b'hello'
    """
    header = file.read(len(ZFILE_PREFIX) + _LENGTH_NBYTES)
    try:
        length = int(header[len(ZFILE_PREFIX) :].decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        raise ArchiveCorruptedError(name, f"the ZF file's header is damaged: {header!r}") from None
    check_allocation(length, "a ZF file")
    data = file.read()
    if data.startswith(b" "):  # joblib <= 0.8.4's wider header (a zlib stream never starts so)
        data = data[1:]
    decompressor = zlib.decompressobj()
    try:
        content = decompressor.decompress(data, length + 1)
    except zlib.error as exc:
        raise ArchiveCorruptedError(name, f"the ZF file's zlib stream is damaged: {exc}") from exc
    if len(content) != length or not decompressor.eof:
        raise ArchiveCorruptedError(
            name, f"the ZF file is truncated or damaged: {len(content)} bytes instead of {length}"
        )
    return content


def _side_file(filename: Any, reading: JoblibReading) -> str:
    """The path of a side file the pickle names, which must sit in the pickle's folder."""
    if reading.path is None:  # not damaged: read from memory, where its side files are not
        raise ArchiveError(
            reading.name,
            "this joblib < 0.10 file keeps its arrays in files beside it: load it by its path",
        )
    if not isinstance(filename, str) or os.path.basename(filename) != filename or filename in ("", ".", ".."):
        # joblib wrote bare names; anything else would read files elsewhere on the disk.
        raise ArchiveCorruptedError(
            reading.name, f"an array file name is not a plain file name: {filename!r:.80}"
        )
    path = os.path.join(os.path.dirname(reading.path), filename)
    if not os.path.isfile(path):
        raise ArchiveCorruptedError(
            reading.name,
            f"the array file {filename!r} is missing (joblib < 0.10 kept arrays beside the pickle)",
        )
    return path


def read_npy_file_array(
    wrapper: NDArrayWrapper, reading: JoblibReading, load_nested: Callable[[IO[bytes]], Any]
) -> Any:
    """The array of an ``NDArrayWrapper``: its ``.npy`` file, mapped with ``mmap_mode`` if set.

    An object array's ``.npy`` holds a pickle, read with ``load_nested`` (never with
    ``np.load(allow_pickle=True)``, which would run it without the caller's unpickler).
    """
    path = _side_file(wrapper.filename, reading)
    with open(path, "rb") as file:
        major, _ = np.lib.format.read_magic(file)
        if major == 1:
            _shape, _, dtype = np.lib.format.read_array_header_1_0(file)
        else:
            _shape, _, dtype = np.lib.format.read_array_header_2_0(file)
        if dtype.hasobject:
            array = load_nested(file)
            if not isinstance(array, np.ndarray):
                raise ArchiveCorruptedError(reading.name, f"the object array file {path!r} holds no array")
        else:
            allow_mmap = getattr(wrapper, "allow_mmap", None) is not False  # joblib < 0.9 wrote none
            mmap_mode = reading.mmap_mode if allow_mmap else None
            file.seek(0)
            array = np.load(file if mmap_mode is None else path, mmap_mode=mmap_mode, allow_pickle=False)  # type: ignore[arg-type]
    if reading.native_byte_order:
        array = native_byte_order(array)
    return with_subclass(array, wrapper.subclass)


def read_zfile_array(wrapper: ZNDArrayWrapper, reading: JoblibReading) -> Any:
    """The array of a ``ZNDArrayWrapper``: numpy's pickled state around a ZF file's bytes."""
    path = _side_file(wrapper.filename, reading)
    init_args, state = wrapper.init_args, wrapper.state
    if not (isinstance(init_args, tuple) and len(init_args) == 3 and isinstance(state, tuple)):
        raise ArchiveCorruptedError(reading.name, "a compressed array's description is damaged")
    subclass, shape, dtype_code = init_args
    if not (isinstance(subclass, type) and issubclass(subclass, np.ndarray)):
        raise ArchiveCorruptedError(
            reading.name, f"a compressed array's class is not an array: {subclass!r:.80}"
        )
    if len(state) != 4 or not isinstance(state[2], np.dtype) or state[2].hasobject:
        raise ArchiveCorruptedError(reading.name, "a compressed array's state is damaged")
    with open(path, "rb") as file:
        data = read_zfile(file, path)
    array = np.ndarray.__new__(subclass, shape, np.dtype(dtype_code))
    array.__setstate__((*state, data))
    return native_byte_order(array) if reading.native_byte_order else array
