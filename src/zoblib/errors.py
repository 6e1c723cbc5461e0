"""Every exception and warning zoblib raises.

The tree::

    ZoblibError                          base of everything zoblib raises on purpose
    ├── ArchiveError(ValueError)         a file that is not a valid archive, or one we cannot read
    │   ├── ArchiveNotFoundError(FileNotFoundError)   no archive at the given path
    │   ├── ArchiveVersionError          written by a newer format version than this zoblib reads
    │   ├── UntrustedContentError        ``load(..., safe=True)`` refused globals outside the allowlist
    │   ├── RemoteArchiveError(OSError)  a store at a URL failed (not the file): read or write
    │   │   ├── RemoteAccessError(PermissionError)  no, wrong or refused credentials
    │   │   └── RemoteTimeoutError(TimeoutError)    the store did not answer, or cannot be reached
    │   └── ArchiveCorruptedError        truncated, damaged or inconsistent contents
    │       └── ChecksumError            stored bytes that do not match their checksum
    ├── ArchiveWriteError(OSError)       ``dump`` could not write (disk full, ...); the old file stays
    ├── CacheError(OSError)              ``Memory`` could not clear or evict entries (a read-only cache)
    ├── CompressionError(ValueError)     an unknown or invalid ``compress=`` value
    ├── HashingError(TypeError)          an object that cannot be hashed
    ├── MissingProtocolError(ImportError)  the package of a URL's protocol (s3fs, gcsfs...) is missing
    ├── UnknownBackendError(ValueError)  an unknown parallel backend name
    │   └── UnknownStoreBackendError(TypeError)  an unknown ``Memory`` store backend name
    ├── WorkerDiedError(RuntimeError)    a worker process died (segfault, kill, OOM killer)
    ├── ParallelTimeoutError(multiprocessing.TimeoutError, TimeoutError)  a ``Parallel`` call
    │                                    ran past its ``timeout`` (joblib raises the former)
    ├── BackendOptionError(ValueError, AssertionError)  an option the parallel backend does not
    │                                    take (joblib refuses some with ``AssertionError``)
    ├── DaskClientError(ValueError)      ``backend='dask'`` found no ``distributed.Client`` (or
    │                                    its cluster no worker)
    └── RemoteTaskError(RuntimeError)    carries a worker's traceback as the ``__cause__`` of a task error

    ZoblibWarning(UserWarning)           base of zoblib's warnings
    ├── ArraysThroughEngineWarning       workers on other machines and no ``store=``: big arrays go
    │                                    through the engine (dask's transfer), pickled with each batch
    └── CacheWarning                     ``Memory`` warnings (entries it could not evict, ...)
        ├── CacheEntryWarning            an unreadable cache entry, treated as a miss
        ├── FunctionChangedWarning       a cached function's code changed: its results are cleared
        └── CacheCollisionWarning        two cached functions may share one cache folder
                                         (joblib's ``JobLibCollisionWarning``)

Every subclass also inherits the matching builtin, so callers' existing ``except ValueError`` or
``except FileNotFoundError`` clauses keep working.
"""

from __future__ import annotations

import multiprocessing
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


class UntrustedContentError(ArchiveError):
    """``load(..., safe=True)`` refused a skeleton: it needs globals outside the allowlist.

    ``untrusted`` lists them (``"module.QualName"``; ``"<...>"`` for what cannot be named
    without executing the pickle, or for an operation refused as it ran), and ``allow_call``
    is the exact call that would load the file anyway, for a user who trusts its author.
    Nothing of the file was executed beyond allowed globals.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        problem: str,
        untrusted: tuple[str, ...] = (),
        allow_call: str = "",
    ) -> None:
        self.untrusted = untrusted
        self.allow_call = allow_call
        super().__init__(path, problem)


class RemoteArchiveError(ArchiveError, OSError):
    """An archive at a URL could not be read or written (a failure of the store, not the file)."""


class RemoteAccessError(RemoteArchiveError, PermissionError):
    """The store refused access: no credentials, wrong credentials or permission denied."""


class RemoteTimeoutError(RemoteArchiveError, TimeoutError):
    """The store did not answer in time, or could not be reached."""


class MissingProtocolError(ZoblibError, ImportError):
    """The package that implements a URL's protocol (s3fs, gcsfs, adlfs, fsspec) is missing."""


class CompressionError(ZoblibError, ValueError):
    """An unknown compressor name or an invalid ``compress=`` value."""


class HashingError(ZoblibError, TypeError):
    """An object cannot be hashed (for instance, it cannot be pickled)."""


class ZoblibWarning(UserWarning):
    """Base class of zoblib's warnings."""


class ArraysThroughEngineWarning(ZoblibWarning):
    """Big numpy arrays go through the parallel engine (pickled with each batch), not by reference.

    Issued once per cluster when its workers run on other machines and no ``store=`` was given
    to ``parallel_config``: the call's temporary folder is not readable there.
    """


class UnknownBackendError(ZoblibError, ValueError):
    """A parallel backend name that is not registered; the message lists the known ones."""


class WorkerDiedError(ZoblibError, RuntimeError):
    """A worker process ended abruptly (crash, ``os._exit``, a signal such as the OOM killer's).

    ``exit_codes`` holds the exit codes seen (negative: killed by that signal number), empty
    when the backend could not tell. The pool is shut down; the next call starts new workers.
    """

    def __init__(self, message: str, exit_codes: tuple[int, ...] = ()) -> None:
        self.exit_codes = exit_codes
        super().__init__(message)


class ParallelTimeoutError(ZoblibError, multiprocessing.TimeoutError, TimeoutError):
    """A parallel task ran longer than the ``timeout`` given to ``Parallel``.

    Also a ``multiprocessing.TimeoutError``, which is what joblib raises, and the builtin
    ``TimeoutError``, so that either ``except`` clause catches it.
    """


class BackendOptionError(ZoblibError, ValueError, AssertionError):
    """An option given to a parallel backend that does not take it (``inner_max_num_threads``).

    Also an ``AssertionError``, which is what joblib raises for a misplaced
    ``inner_max_num_threads``.
    """


class DaskClientError(ZoblibError, ValueError):
    """``backend='dask'`` has no ``distributed.Client`` to run on, or its cluster has no worker.

    A ``ValueError``, as joblib's dask backend raises; the message says how to make a client.
    """


class RemoteTaskError(ZoblibError, RuntimeError):
    """A task failed in a worker with an exception that could not be sent back as it was.

    The message holds the original exception's type, message and the worker's traceback.
    """


class ChecksumError(ArchiveCorruptedError):
    """A stored chunk or skeleton does not match its checksum: the file was damaged."""


class ArchiveWriteError(ZoblibError, OSError):
    """``dump`` could not write the archive (disk full, permission denied, ...).

    The previous archive under the target name, if any, is left untouched.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, errno: int | None = None) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path!r}: {problem}")
        if errno is not None:
            self.errno = errno


class CacheError(ZoblibError, OSError):
    """``Memory`` could not change its cache: clearing or evicting entries of a read-only cache.

    Raised by the calls that only maintain the cache (``Memory.clear``, ``Memory.reduce_size``,
    a cached function's ``clear``, ``MemorizedResult.clear``); the OSError met is its
    ``__cause__`` and its ``errno`` is kept. Cached calls never raise it: hits from a read-only
    cache load as usual, and a result that cannot be stored or entries that cannot be evicted
    give a :class:`CacheWarning`.
    """

    def __init__(self, location: str, problem: str, errno: int | None = None) -> None:
        self.location = location
        self.problem = problem
        super().__init__(problem)
        if errno is not None:
            self.errno = errno


class UnknownStoreBackendError(UnknownBackendError, TypeError):
    """A ``Memory`` store backend name that is not registered; the message lists the known ones.

    Also a ``TypeError``, which is what joblib raises ("Unknown location ... or backend ...").
    """


class CacheWarning(ZoblibWarning):
    """Base class of the warnings ``Memory`` issues (joblib's ``Logger.warn`` messages)."""


class CacheEntryWarning(CacheWarning):
    """A cache entry could not be read (damaged, truncated, missing files) or written.

    The call is computed again and, when possible, the entry is overwritten; the user's code
    never sees an exception or wrong data from the cache.
    """


class FunctionChangedWarning(CacheWarning):
    """A cached function's code changed since its results were stored: they were cleared."""


class CacheCollisionWarning(CacheWarning):
    """Two different cached functions may share one cache folder (joblib's ``JobLibCollisionWarning``).

    Issued, as joblib does, when the code stored for a function's folder differs from the
    function's and either the old function still stands unchanged where its code was recorded
    (two functions of one name in one module), or a collision cannot be told apart from a change
    (lambdas, functions without source). The folder's results are then cleared, as for a change.
    """
