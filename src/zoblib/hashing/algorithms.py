"""The hash algorithms ``zoblib.hash`` accepts by name.

xxhash's XXH3 runs at memory speed and is the default; hashlib's md5, sha1 and sha256 stay
available for callers who want a cryptographic digest (or joblib's algorithm names).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

import xxhash

DEFAULT_HASH_NAME = "xxh3_128"


class HashObject(Protocol):
    """What zoblib needs from a streaming hash: hashlib's and xxhash's objects both fit."""

    def update(self, data: bytes | memoryview, /) -> None:
        """Feed more bytes to the hash."""

    def hexdigest(self) -> str:
        """Return the digest of everything fed so far, as lowercase hexadecimal."""


def _hashlib_factory(name: str) -> Callable[[], HashObject]:
    def new() -> HashObject:
        # Not used to protect secrets: lets md5 and sha1 run on FIPS-restricted builds.
        return hashlib.new(name, usedforsecurity=False)

    return new


_FACTORIES: dict[str, Callable[[], HashObject]] = {
    "xxh3_128": xxhash.xxh3_128,
    "xxh3_64": xxhash.xxh3_64,
    "md5": _hashlib_factory("md5"),
    "sha1": _hashlib_factory("sha1"),
    "sha256": _hashlib_factory("sha256"),
}

#: Read-only view of the accepted names and the factories that make their hash objects.
HASH_ALGORITHMS: Mapping[str, Callable[[], HashObject]] = MappingProxyType(_FACTORIES)


def new_hash_object(hash_name: str) -> HashObject:
    """Return a fresh streaming hash object for the algorithm called ``hash_name``.

    Parameters
    ----------
    hash_name : str
        One of ``'xxh3_128'``, ``'xxh3_64'``, ``'md5'``, ``'sha1'`` or ``'sha256'``.

    Returns
    -------
    HashObject
        An object with ``update(data)`` and ``hexdigest()``.

    Raises
    ------
    ValueError
        If ``hash_name`` is not a known algorithm; the message lists the known ones.

    Examples
    --------
    >>> new_hash_object("md5").hexdigest()
    'd41d8cd98f00b204e9800998ecf8427e'
    """
    try:
        factory = _FACTORIES[hash_name]
    except (KeyError, TypeError):
        known = ", ".join(repr(name) for name in _FACTORIES)
        raise ValueError(
            f"Valid options for 'hash_name' are {known}. Got hash_name={hash_name!r} instead."
        ) from None
    return factory()
