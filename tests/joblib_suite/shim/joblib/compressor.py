"""``joblib.compressor``: joblib's compressor file objects and registry, which zoblib does not have.

``register_compressor`` of zoblib takes a numcodecs codec, not a ``CompressorWrapper``.
"""

from joblib._missing import JOBLIB_FORMAT, NO_ZOBLIB_NAME, MissingName

#: joblib 1.6.0's built-in compressor names (all accepted by zoblib's ``compress=``), so joblib's
#: tests parametrized over them keep their ids; the wrappers they map to are joblib's own.
_COMPRESSORS = {
    name: MissingName(f"joblib.compressor._COMPRESSORS[{name!r}]", JOBLIB_FORMAT)
    for name in ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")
}

CompressorWrapper = MissingName("joblib.compressor.CompressorWrapper", NO_ZOBLIB_NAME)
BinaryZlibFile = MissingName("joblib.compressor.BinaryZlibFile", JOBLIB_FORMAT)
_LZ4_PREFIX = MissingName("joblib.compressor._LZ4_PREFIX", JOBLIB_FORMAT)
LZ4_NOT_INSTALLED_ERROR = MissingName("joblib.compressor.LZ4_NOT_INSTALLED_ERROR", JOBLIB_FORMAT)
