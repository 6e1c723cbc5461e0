"""``joblib.compressor``: ``CompressorWrapper`` bound to zoblib's, joblib's file objects missing.

``register_compressor`` of zoblib takes joblib's ``CompressorWrapper`` (as well as numcodecs
codecs). ``_COMPRESSORS`` (private in joblib) is what joblib's tests read back after registering:
here it shows the wrappers registered with zoblib, and joblib's built-in compressor names, whose
file-object wrappers are joblib's pickle-format internals.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from joblib._missing import JOBLIB_FORMAT, MissingName
from zoblib.archive import compression
from zoblib.archive.compression import CompressorWrapper

__all__ = ["CompressorWrapper"]

#: joblib 1.6.0's built-in compressor names (all accepted by zoblib's ``compress=``), so joblib's
#: tests parametrized over them keep their ids; the wrappers they map to are joblib's own.
_BUILT_IN = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")


class _RegisteredCompressors(MutableMapping[str, Any]):
    """joblib's ``_COMPRESSORS`` as a view of zoblib's registered wrappers (harness glue).

    ``pop`` (joblib's tests clean up with it) unregisters the name from zoblib.
    """

    def __getitem__(self, name: str) -> Any:
        wrapper = compression._WRAPPERS.get(name)
        if wrapper is not None:
            return wrapper
        if name in _BUILT_IN:
            return MissingName(f"joblib.compressor._COMPRESSORS[{name!r}]", JOBLIB_FORMAT)
        raise KeyError(name)

    def __setitem__(self, name: str, value: Any) -> None:
        compression.register_compressor(name, value, force=True)

    def __delitem__(self, name: str) -> None:
        if name not in compression._WRAPPERS:
            raise KeyError(name)
        del compression._WRAPPERS[name]
        del compression._REGISTRY[name]

    def __iter__(self) -> Iterator[str]:
        yield from _BUILT_IN
        yield from (name for name in compression._WRAPPERS if name not in _BUILT_IN)

    def __len__(self) -> int:
        return len(set(_BUILT_IN) | set(compression._WRAPPERS))


_COMPRESSORS = _RegisteredCompressors()

BinaryZlibFile = MissingName("joblib.compressor.BinaryZlibFile", JOBLIB_FORMAT)
_LZ4_PREFIX = MissingName("joblib.compressor._LZ4_PREFIX", JOBLIB_FORMAT)
LZ4_NOT_INSTALLED_ERROR = MissingName("joblib.compressor.LZ4_NOT_INSTALLED_ERROR", JOBLIB_FORMAT)
