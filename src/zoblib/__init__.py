"""zoblib: joblib's dump/load, Memory and Parallel, rebuilt storage-first on Zarr v3 and HDF5."""

from zoblib._version import __version__
from zoblib.archive import LazyArray, dump, load, register_compressor, verify
from zoblib.errors import (
    ArchiveCorruptedError,
    ArchiveError,
    ArchiveNotFoundError,
    ArchiveVersionError,
    ArchiveWriteError,
    ChecksumError,
    CompressionError,
    HashingError,
    ZoblibError,
    ZoblibWarning,
)
from zoblib.hashing import hash

__all__ = [
    "ArchiveCorruptedError",
    "ArchiveError",
    "ArchiveNotFoundError",
    "ArchiveVersionError",
    "ArchiveWriteError",
    "ChecksumError",
    "CompressionError",
    "HashingError",
    "LazyArray",
    "ZoblibError",
    "ZoblibWarning",
    "__version__",
    "dump",
    "hash",
    "load",
    "register_compressor",
    "verify",
]
