"""The ``compress=`` argument: joblib's forms, our codecs, and the compressor registry.

A compressor is a numcodecs codec. ``resolve_compression`` turns any value joblib accepts
(``False``, ``True``, ``0``-``9``, ``'zlib'``, ``('gzip', 6)``, ...) plus ``'zstd'``, ``'blosc'``
and registered names into a codec, or ``None`` for no compression. An integer level picks Blosc
with byte shuffle (multithreaded, 10-30x faster than zlib): lz4 up to level 5, zstd above.

joblib's own form of registration, a :class:`CompressorWrapper` around a compressed-file class
(``bz2.BZ2File``, ``lz4.frame.LZ4FrameFile``), is accepted too: each chunk is then compressed
as one small compressed "file" of that class (:class:`FileObjectCodec`).
"""

from __future__ import annotations

import io
import os
import types
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numcodecs
from numcodecs.abc import Codec

from zoblib.errors import CompressionError

CodecFactory = Callable[[int], Codec]
DEFAULT_LEVEL = 3

_EXTENSIONS: dict[str, str] = {
    ".z": "zlib",
    ".gz": "gzip",
    ".bz2": "bz2",
    ".xz": "xz",
    ".lzma": "lzma",
    ".lz4": "lz4",
}
#: Filename endings a compressor is inferred from (joblib's, and those of registered
#: :class:`CompressorWrapper` objects), and the name they map to.
EXTENSION_COMPRESSORS: Mapping[str, str] = types.MappingProxyType(_EXTENSIONS)


def _blosc(cname: str) -> CodecFactory:
    return lambda level: numcodecs.Blosc(cname=cname, clevel=level, shuffle=numcodecs.Blosc.SHUFFLE)


def _auto_blosc(level: int) -> Codec:
    return _blosc("lz4" if level <= 5 else "zstd")(level)


_REGISTRY: dict[str, CodecFactory] = {
    "zlib": lambda level: numcodecs.Zlib(level=level),
    "gzip": lambda level: numcodecs.GZip(level=level),
    "bz2": lambda level: numcodecs.BZ2(level=max(level, 1)),
    "lzma": lambda level: numcodecs.LZMA(preset=level),
    "xz": lambda level: numcodecs.LZMA(preset=level),
    # LZ4 has no levels in numcodecs, only an acceleration factor; level is ignored.
    "lz4": lambda level: numcodecs.LZ4(acceleration=1),
    "zstd": lambda level: numcodecs.Zstd(level=level),
    "blosc": _auto_blosc,
    "blosc-lz4": _blosc("lz4"),
    "blosc-zstd": _blosc("zstd"),
}

#: Read-only view of the registered compressor names and their factories.
COMPRESSORS: Mapping[str, CodecFactory] = types.MappingProxyType(_REGISTRY)


class CompressorWrapper:
    """joblib's description of a compressor: a compressed-file class, its magic bytes, its extension.

    ``register_compressor(name, CompressorWrapper(obj=bz2.BZ2File, prefix=b"BZh"))`` works as
    it does with joblib: ``compress=name`` (or ``(name, level)``, or a filename ending in
    ``extension``) then compresses every chunk with ``obj``. zoblib records the compressor's
    name in the archive, so ``prefix`` is kept for joblib's sake but not needed to read it; the
    compressor must be registered, under the same name, wherever the archive is loaded.

    Parameters
    ----------
    obj
        A file-object class, called as ``obj(fileobj, "wb", compresslevel=level)`` to compress
        and ``obj(fileobj, "rb")`` to decompress, ``fileobj`` an in-memory binary file
        (``bz2.BZ2File``, ``lz4.frame.LZ4FrameFile``). For a class whose parameters differ
        (``lzma.LZMAFile`` takes ``preset``, ``gzip.GzipFile`` a file name first), subclass
        the wrapper and override :meth:`compressor_file` and :meth:`decompressor_file`, as
        joblib's own wrappers do.
    prefix
        The magic bytes that start a file of this format.
    extension
        A filename ending (``".bz2"``) that selects this compressor when ``compress`` is not given.

    Examples
    --------
    >>> import bz2, os, tempfile
    >>> import numpy as np
    >>> import zoblib
    >>> from zoblib.archive.compression import CompressorWrapper
    >>> zoblib.register_compressor("bz2-file", CompressorWrapper(bz2.BZ2File, b"BZh"), force=True)
    >>> path = os.path.join(tempfile.mkdtemp(), "a.pkl")
    >>> _ = zoblib.dump(np.arange(100_000.0), path, compress=("bz2-file", 6))
    >>> float(zoblib.load(path).sum())
    4999950000.0
    """

    def __init__(self, obj: Callable[..., Any], prefix: bytes = b"", extension: str = "") -> None:
        self.fileobj_factory = obj
        self.prefix = prefix
        self.extension = extension

    def compressor_file(self, fileobj: Any, compresslevel: int | None = None) -> Any:
        """A file object that writes compressed bytes into ``fileobj``."""
        if compresslevel is None:
            return self.fileobj_factory(fileobj, "wb")
        return self.fileobj_factory(fileobj, "wb", compresslevel=compresslevel)

    def decompressor_file(self, fileobj: Any) -> Any:
        """A file object that reads the decompressed bytes of ``fileobj``."""
        return self.fileobj_factory(fileobj, "rb")

    def __repr__(self) -> str:
        factory = getattr(self.fileobj_factory, "__qualname__", repr(self.fileobj_factory))
        return f"{type(self).__name__}(obj={factory}, prefix={self.prefix!r}, extension={self.extension!r})"


#: The :class:`CompressorWrapper` objects registered, by compressor name.
_WRAPPERS: dict[str, CompressorWrapper] = {}


class FileObjectCodec(Codec):  # type: ignore[misc]
    """A numcodecs codec that compresses each chunk with a registered :class:`CompressorWrapper`.

    Parameters
    ----------
    compressor
        The name the wrapper is registered under (looked up when a chunk is encoded or decoded,
        so reading needs the same registration).
    level
        The ``compresslevel`` given to the file class, or None for its default.
    """

    codec_id: ClassVar[str] = "zoblib.fileobj"

    def __init__(self, compressor: str, level: int | None = None) -> None:
        self.compressor = compressor
        self.level = level

    def _wrapper(self) -> CompressorWrapper:
        try:
            return _WRAPPERS[self.compressor]
        except KeyError:
            raise CompressionError(
                f"compressor {self.compressor!r} is not registered in this process: register the "
                "same CompressorWrapper under that name (zoblib.register_compressor) to read or "
                "write chunks compressed with it"
            ) from None

    def encode(self, buf: Any) -> bytes:
        """Compress ``buf`` into one compressed "file" of the wrapper's class."""
        out = io.BytesIO()
        with self._wrapper().compressor_file(out, compresslevel=self.level) as compressed:
            compressed.write(memoryview(buf).cast("B"))
        return out.getvalue()

    def decode(self, buf: Any, out: Any = None) -> Any:
        """Decompress ``buf``; into ``out`` if given."""
        with self._wrapper().decompressor_file(io.BytesIO(memoryview(buf).cast("B"))) as compressed:
            data = compressed.read()
        return numcodecs.compat.ndarray_copy(data, out) if out is not None else data

    def get_config(self) -> dict[str, Any]:
        """The codec's JSON configuration (its id, the compressor's name and the level)."""
        return {"id": self.codec_id, "compressor": self.compressor, "level": self.level}


numcodecs.register_codec(FileObjectCodec)

#: What a joblib compressed-file class must have (joblib's check, with joblib's message).
_FILE_METHODS = ("read", "write", "seek", "tell")


def _register_wrapper(compressor_name: str, compressor: CompressorWrapper) -> None:
    factory = compressor.fileobj_factory
    if not all(hasattr(factory, method) for method in _FILE_METHODS):
        raise CompressionError(
            "Compressor 'fileobj_factory' attribute should implement the file object interface, "
            f"'{factory}' given (it needs {', '.join(_FILE_METHODS)})."
        )
    _WRAPPERS[compressor_name] = compressor
    _REGISTRY[compressor_name] = lambda level: FileObjectCodec(compressor_name, level)
    if compressor.extension:
        _EXTENSIONS[compressor.extension.lower()] = compressor_name


def register_compressor(
    compressor_name: str, compressor: Codec | CodecFactory | CompressorWrapper, force: bool = False
) -> None:
    """Register a compressor usable as ``compress=compressor_name`` or ``(compressor_name, level)``.

    Parameters
    ----------
    compressor_name
        The name users pass in ``compress=``.
    compressor
        A numcodecs codec instance (used at every level), a callable taking the level (an int)
        and returning a codec, or joblib's form, a :class:`CompressorWrapper` around a
        compressed-file class. Archives written with it can be loaded wherever numcodecs knows the
        codec's id (see :func:`numcodecs.register_codec`), or, for a wrapper, where the same
        wrapper is registered under the same name.
    force
        Replace an existing registration of the same name.

    Raises
    ------
    CompressionError
        If the name is taken and ``force`` is false, or ``compressor`` is not a codec, a
        callable or a wrapper of a file-object class (joblib's messages; also ``ValueError``).

    Examples
    --------
    >>> import numcodecs, zoblib
    >>> zoblib.register_compressor("zlib-fast", lambda level: numcodecs.Zlib(1), force=True)
    """
    if not isinstance(compressor_name, str) or not compressor_name:
        raise CompressionError(f"Compressor name should be a string, '{compressor_name}' given.")
    if compressor_name in _REGISTRY and not force:
        raise CompressionError(
            f"Compressor '{compressor_name}' already registered. Pass force=True to replace it."
        )
    if isinstance(compressor, CompressorWrapper):
        _register_wrapper(compressor_name, compressor)
        return
    _WRAPPERS.pop(compressor_name, None)
    if isinstance(compressor, Codec):
        codec = compressor
        _REGISTRY[compressor_name] = lambda level: codec
    elif callable(compressor):
        _REGISTRY[compressor_name] = compressor
    else:
        raise CompressionError(
            f"compressor must be a numcodecs Codec or a callable level -> Codec, got {compressor!r}"
        )


def _codec_for(name: str, level: int) -> Codec:
    try:
        factory = _REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_REGISTRY))
        raise CompressionError(
            f'Non valid compression method given: "{name}". Possible values are {known}.'
        ) from None
    codec = factory(level)
    if not isinstance(codec, Codec):
        raise CompressionError(f"compressor {name!r} returned {codec!r}, not a numcodecs Codec")
    return codec


def _check_level(level: object) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
        raise CompressionError(
            f'Non valid compress level given: "{level}". Possible values are {list(range(10))}.'
        )
    return level


def resolve_compression(compress: Any, filename: str | os.PathLike[str] | None = None) -> Codec | None:
    """Turn a ``compress=`` value (and the filename's ending) into a codec, or ``None``.

    Raises
    ------
    CompressionError
        For an unknown name or an invalid level.
    """
    if compress is True:
        return _auto_blosc(DEFAULT_LEVEL)
    if compress is None or compress is False or compress == 0:
        if filename is not None:
            suffix = os.path.splitext(os.fspath(filename))[1].lower()
            if suffix in EXTENSION_COMPRESSORS:
                return _codec_for(EXTENSION_COMPRESSORS[suffix], DEFAULT_LEVEL)
        return None
    if isinstance(compress, Codec):
        return compress
    if isinstance(compress, int):
        return _auto_blosc(_check_level(compress))
    if isinstance(compress, str):
        return _codec_for(compress, DEFAULT_LEVEL)
    if isinstance(compress, tuple) and len(compress) != 2:
        raise CompressionError(
            "Compress argument tuple should contain exactly 2 elements: "
            f"(compress method, compress level), you passed {compress}"
        )
    if isinstance(compress, (tuple, list)) and len(compress) == 2:
        level = _check_level(compress[1])
        return None if level == 0 else _codec_for(compress[0], level)
    # joblib's message for any other value; it also lists what is accepted here.
    raise CompressionError(
        f'Non valid compress level given: "{compress}". Use False, True, an int 0-9, a compressor '
        "name, a (name, level) tuple or a numcodecs codec."
    )


def codec_to_zarr(codec: Codec, itemsize: int) -> dict[str, Any]:
    """The Zarr v3 codec metadata (``{"name": ..., "configuration": ...}``) for a numcodecs codec.

    Blosc, Zstd and GZip map to Zarr's core codecs; every other codec to ``numcodecs.<id>``,
    which zarr-python reads through numcodecs.
    """
    config = dict(codec.get_config())
    codec_id = config.pop("id")
    if codec_id == "blosc":
        shuffle = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}[config["shuffle"]]
        configuration = {
            "cname": config["cname"],
            "clevel": config["clevel"],
            "shuffle": shuffle,
            "typesize": itemsize if itemsize <= 255 else 1,
            "blocksize": config.get("blocksize", 0),
        }
        return {"name": "blosc", "configuration": configuration}
    if codec_id == "zstd":
        return {"name": "zstd", "configuration": {"level": config["level"], "checksum": False}}
    if codec_id == "gzip":
        return {"name": "gzip", "configuration": {"level": config["level"]}}
    return {"name": f"numcodecs.{codec_id}", "configuration": config}


def codec_from_zarr(spec: Mapping[str, Any]) -> Codec:
    """The numcodecs codec that decodes chunks written with the Zarr v3 codec ``spec``.

    Raises
    ------
    CompressionError
        If numcodecs does not know the codec.
    """
    name = spec.get("name")
    config = dict(spec.get("configuration") or {})
    if name == "blosc":
        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[config["shuffle"]]
        return numcodecs.Blosc(cname=config["cname"], clevel=config["clevel"], shuffle=shuffle)
    if name == "zstd":
        return numcodecs.Zstd(level=config.get("level", 0))
    if name == "gzip":
        return numcodecs.GZip(level=config.get("level", 5))
    if isinstance(name, str) and name.startswith("numcodecs."):
        try:
            return numcodecs.get_codec({"id": name.removeprefix("numcodecs."), **config})
        except (ValueError, KeyError, TypeError) as exc:
            raise CompressionError(f"numcodecs cannot build codec {spec!r}: {exc}") from exc
    raise CompressionError(f"unsupported codec {spec!r}")


def is_adaptive(compress: Any) -> bool:
    """Whether ``compress`` leaves the codec's tuning to zoblib (an int level, True, 'blosc')."""
    if isinstance(compress, bool):
        return compress
    if isinstance(compress, int):
        return compress > 0
    return bool(compress == "blosc")


#: A candidate must be this much smaller on the sample to replace the faster default.
_ADAPTIVE_MIN_GAIN = 0.9


def tuned_codec(codec: Codec, sample: Any) -> Codec:
    """The better of ``codec`` (Blosc with byte shuffle) and Zstd over whole chunks, by the size
    each gives on ``sample`` (one chunk of the array).

    Byte shuffle makes smooth numbers compress far better, but breaks the repeated byte
    patterns of, for instance, decimal values rounded for storage, where Zstd over a whole chunk
    (Blosc's small blocks lose its long matches) does better than zlib; trying both on one
    chunk costs a few milliseconds.
    """
    config = codec.get_config()
    if config.get("id") != "blosc" or config.get("shuffle") == 0:
        return codec
    candidate = numcodecs.Zstd(level=config["clevel"])
    if len(candidate.encode(sample)) < _ADAPTIVE_MIN_GAIN * len(codec.encode(sample)):
        return candidate
    return codec
