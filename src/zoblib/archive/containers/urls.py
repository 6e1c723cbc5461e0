"""Archives at fsspec URLs: telling a URL from a path, opening its file system, naming failures.

Every call a remote container makes to its file system runs inside :func:`remote_errors`, which
turns what fsspec, s3fs, gcsfs, adlfs, aiohttp and botocore raise (``FileNotFoundError``,
``PermissionError``, ``NoCredentialsError``, timeouts, ``ClientError``...) into zoblib's errors
naming the URL and the problem, with the original as the cause. ``Memory``'s fsspec store opens
its file system through :func:`open_filesystem` too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeGuard

from zoblib.errors import (
    ArchiveError,
    ArchiveNotFoundError,
    MissingProtocolError,
    RemoteAccessError,
    RemoteArchiveError,
    RemoteTimeoutError,
    ZoblibError,
)

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
#: Protocols that can only be read (no PUT).
READ_ONLY_PROTOCOLS = frozenset({"http", "https"})
_CREDENTIAL_ERRORS = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "ClientAuthenticationError"}
)
_TIMEOUT_ERRORS = frozenset({"ConnectTimeoutError", "ReadTimeoutError", "ServerTimeoutError"})
_CONNECTION_ERRORS = frozenset({"EndpointConnectionError", "ClientConnectorError", "ConnectionClosedError"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"})
_MISSING_CODES = frozenset({"NoSuchBucket", "NoSuchKey", "404", "NotFound"})
_EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
}


def url_protocol(target: object) -> str | None:
    """The protocol of ``target`` if it is a URL string (``'s3'``, ``'memory'``...), else ``None``.

    Examples
    --------
    >>> url_protocol("s3://bucket/data.zarr"), url_protocol("/tmp/data.pkl")
    ('s3', None)
    """
    if not isinstance(target, str):
        return None
    match = _URL.match(target)
    return match.group(1).lower() if match else None


def is_url(target: object) -> TypeGuard[str]:
    """Whether ``target`` is a URL read through fsspec (``file://`` URLs are local paths).

    Examples
    --------
    >>> is_url("memory://cache/data.pkl"), is_url("file:///tmp/data.pkl"), is_url("data.pkl")
    (True, False, False)
    """
    return url_protocol(target) not in (None, "file")


def local_path(target: str) -> str:
    """A ``file://`` URL as a plain path (the local containers, memory maps included, read it).

    Examples
    --------
    >>> local_path("file:///tmp/data.pkl"), local_path("/tmp/data.pkl")
    ('/tmp/data.pkl', '/tmp/data.pkl')
    """
    return target[len("file://") :] if target.lower().startswith("file://") else target


def open_filesystem(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path inside it.

    Raises
    ------
    MissingProtocolError
        (an ``ImportError``) naming the package to install when fsspec, or the protocol's own
        package, is missing.
    ArchiveError
        For a protocol fsspec does not know.
    """
    try:
        import fsspec  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingProtocolError(f"{url!r} needs fsspec: pip install 'zoblib[remote]'") from exc
    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as exc:
        extra = _EXTRAS.get(url_protocol(url) or "", "remote")
        raise MissingProtocolError(f"{url!r}: {exc} (pip install 'zoblib[{extra}]')") from exc
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise ArchiveError(url, f"unknown URL protocol: {exc}") from exc
        raise
    return fs, str(path)


@dataclass(frozen=True)
class RemoteLocation:
    """An archive's URL, its file system and its path there."""

    url: str
    fs: Any
    path: str
    storage_options: Mapping[str, Any]

    @classmethod
    def open(cls, url: str, storage_options: Mapping[str, Any] | None = None) -> RemoteLocation:
        with remote_errors(url, "open the store"):
            fs, path = open_filesystem(url, storage_options)
        return cls(url.rstrip("/"), fs, path.rstrip("/"), dict(storage_options or {}))

    @property
    def read_only(self) -> bool:
        """Whether the protocol can only be read (``http``, ``https``)."""
        return url_protocol(self.url) in READ_ONLY_PROTOCOLS

    def require_writable(self) -> None:
        """Refuse, with an ``ArchiveError`` naming the URL, to write at a read-only location."""
        if self.read_only:
            raise ArchiveError(self.url, "cannot write an archive over http(s): it is read-only")

    def child(self, key: str) -> str:
        """The path, in the file system, of ``key`` under this location."""
        return f"{self.path}/{key}"

    def fetch(self, path: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes ``start:end`` of the object at ``path`` in one request (``start < 0``: a suffix)."""
        with remote_errors(self.url, f"read {self._name(path)!r}"):
            # start=0 rather than None: s3fs sizes an object (a HEAD) before a whole read.
            return bytes(self.fs.cat_file(path, start=0 if start is None else start, end=end))

    def fetch_if_exists(self, path: str) -> bytes | None:
        """The whole object at ``path``, or ``None`` if there is none (one request)."""
        try:
            return self.fetch(path)
        except ArchiveNotFoundError:
            return None

    def _name(self, path: str) -> str:
        return path[len(self.path) + 1 :] if path.startswith(self.path + "/") else path


@contextmanager
def remote_errors(url: str, action: str) -> Iterator[None]:
    """Translate a failure of the store while doing ``action`` at ``url`` into zoblib's errors."""
    try:
        yield
    except ZoblibError:
        raise
    except Exception as exc:
        raise _translate(url, action, exc) from exc


def _translate(url: str, action: str, exc: BaseException) -> ArchiveError:
    """The zoblib error for ``exc``, raised by a file system at ``url`` while doing ``action``."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    code = _error_code(exc)
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, FileNotFoundError) or code in _MISSING_CODES:
        return ArchiveNotFoundError(url, f"cannot {action}: no such bucket or object ({detail})")
    if names & _CREDENTIAL_ERRORS:
        return RemoteAccessError(url, f"cannot {action}: no usable credentials ({detail})")
    if isinstance(exc, PermissionError) or code in _DENIED_CODES:
        return RemoteAccessError(url, f"cannot {action}: permission denied ({detail})")
    if isinstance(exc, TimeoutError) or names & _TIMEOUT_ERRORS:
        return RemoteTimeoutError(url, f"cannot {action}: the store timed out ({detail})")
    if names & _CONNECTION_ERRORS or isinstance(exc, ConnectionError):
        return RemoteTimeoutError(url, f"cannot {action}: the store cannot be reached ({detail})")
    return RemoteArchiveError(url, f"cannot {action}: {detail}")


def _error_code(exc: BaseException) -> str | None:
    """botocore's error code (``'AccessDenied'``...), if ``exc`` or its cause carries one."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code is not None:
                return str(code)
    return None
