"""Turning the OSErrors of cache maintenance (clearing, eviction) into :class:`~zoblib.errors.CacheError`.

A store raises whatever its file system raises; the calls that maintain a cache translate it
here, in one place, into an error that names the cache and says what could not be done.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from zoblib.errors import CacheError

#: errno values that mean "this cache is read-only for us", whatever made it so.
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def describe_os_error(error: OSError) -> str:
    """The problem an OSError reports, in words, with the path it names when it names one.

    Examples
    --------
    >>> import errno
    >>> describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/cache/x"))
    "permission denied ('/cache/x')"
    """
    if error.errno == errno.EROFS:
        problem = "read-only file system"
    elif error.errno in (errno.EACCES, errno.EPERM):
        problem = "permission denied"
    else:
        problem = (error.strerror or str(error) or type(error).__name__).lower()
    return f"{problem} ({error.filename!r})" if error.filename else problem


def cache_error(location: str, action: str, error: OSError, *, detail: str = "") -> CacheError:
    """A :class:`CacheError` saying that ``action`` failed on the cache at ``location``.

    Parameters
    ----------
    location
        The cache's location, as the store reports it.
    action
        What could not be done, as ``cannot <action> the cache at ...`` reads it:
        ``'clear'``, ``'remove entries from'``.
    error
        The OSError met; its errno is kept.
    detail
        Added after the problem (``'2 of 5 entries removed'``).

    Examples
    --------
    >>> import errno
    >>> str(cache_error("/c", "clear", OSError(errno.EROFS, "Read-only file system")))
    "cannot clear the read-only cache at '/c': read-only file system"
    """
    kind = "read-only cache" if error.errno in READ_ONLY_ERRNOS else "cache"
    message = f"cannot {action} the {kind} at {os.fspath(location)!r}: {describe_os_error(error)}"
    if detail:
        message += f" ({detail})"
    return CacheError(location, message, error.errno)


@contextlib.contextmanager
def maintenance_errors(location: str, action: str) -> Iterator[None]:
    """Raise the OSErrors of the ``with`` block as :class:`CacheError` (see :func:`cache_error`)."""
    try:
        yield
    except CacheError:
        raise
    except OSError as exc:
        raise cache_error(location, action, exc) from exc
