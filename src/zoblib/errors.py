"""Every exception and warning zoblib raises.

The tree::

    ZoblibError                          base of everything zoblib raises on purpose
    ├── ArchiveError(ValueError)         a file that is not a valid archive, or one we cannot read
    │   ├── ArchiveNotFoundError(FileNotFoundError)   no archive at the given path
    │   ├── ArchiveVersionError          written by a newer format version than this zoblib reads
    │   └── ArchiveCorruptedError        truncated, damaged or inconsistent contents
    ├── CompressionError(ValueError)     an unknown or invalid ``compress=`` value
    └── HashingError(TypeError)          an object that cannot be hashed

    ZoblibWarning(UserWarning)           base of zoblib's warnings

Every subclass also inherits the matching builtin, so callers' existing ``except ValueError`` or
``except FileNotFoundError`` clauses keep working.
"""

from __future__ import annotations

import os


class ZoblibError(Exception):
    """Base class of every error zoblib raises on purpose."""


class ArchiveError(ZoblibError, ValueError):
    """A file or directory is not a zoblib archive, or cannot be read as one."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        where = f"{self.path!r}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")


class ArchiveNotFoundError(ArchiveError, FileNotFoundError):
    """No archive exists at the given path."""


class ArchiveVersionError(ArchiveError):
    """The archive was written by a newer format version than this zoblib can read."""


class ArchiveCorruptedError(ArchiveError):
    """The archive is truncated, damaged or internally inconsistent."""


class CompressionError(ZoblibError, ValueError):
    """An unknown compressor name or an invalid ``compress=`` value."""


class HashingError(ZoblibError, TypeError):
    """An object cannot be hashed (for instance, it cannot be pickled)."""


class ZoblibWarning(UserWarning):
    """Base class of zoblib's warnings."""
