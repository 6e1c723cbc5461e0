"""The registry of cache store backends, by name, and the choice of one for a location."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from zoblib.errors import UnknownStoreBackendError
from zoblib.memory.local_store import LocalStoreBackend
from zoblib.memory.store import StoreBackend


def _fsspec_backend(location: str, **options: Any) -> StoreBackend:
    # Imported on first use: fsspec is an optional dependency.
    from zoblib.memory.fsspec_store import FsspecStoreBackend

    return FsspecStoreBackend(location, **options)


BackendFactory = Callable[..., StoreBackend]

_backends: dict[str, BackendFactory] = {"local": LocalStoreBackend, "fsspec": _fsspec_backend}

#: The registered store backends by name (read-only; add with :func:`register_store_backend`).
STORE_BACKENDS: Mapping[str, BackendFactory] = MappingProxyType(_backends)


def register_store_backend(backend_name: str, backend: type[StoreBackend]) -> None:
    """Make a cache store backend available to ``Memory(backend=backend_name)``.

    Parameters
    ----------
    backend_name : str
        The name to pass as ``backend=``; registering a name again replaces it.
    backend : type
        A subclass of :class:`~zoblib.memory.StoreBackend`, constructed as
        ``backend(location, **backend_options)``.

    Raises
    ------
    ValueError
        If ``backend_name`` is not a string or ``backend`` is not a ``StoreBackend`` subclass.

    Examples
    --------
    >>> from zoblib.memory import LocalStoreBackend
    >>> class MyStore(LocalStoreBackend):
    ...     pass
    >>> register_store_backend("mine", MyStore)
    >>> "mine" in STORE_BACKENDS
    True
    """
    if not isinstance(backend_name, str):
        raise ValueError(f"backend_name must be a string, got {backend_name!r}")
    if not (isinstance(backend, type) and issubclass(backend, StoreBackend)):
        raise ValueError(f"backend must be a subclass of zoblib.memory.StoreBackend, got {backend!r}")
    _backends[backend_name] = backend


def is_url(location: str) -> bool:
    """Whether ``location`` names an fsspec file system (``s3://...``, ``memory://...``)."""
    return "://" in location


def make_store_backend(
    backend: str | StoreBackend, location: Any, backend_options: Mapping[str, Any] | None
) -> StoreBackend:
    """The store for ``Memory(location, backend=..., backend_options=...)``.

    A URL location goes to the fsspec backend when ``backend`` is the default ``'local'``,
    except ``file://`` URLs, which are local paths (so results can be memory-mapped).
    """
    if isinstance(backend, StoreBackend):
        return backend
    options = dict(backend_options or {})
    if isinstance(location, StoreBackend):
        return location
    location = os.fspath(location) if isinstance(location, os.PathLike) else location
    if not isinstance(location, str):
        raise TypeError(f"location must be a path, a URL or None, got {type(location).__name__}")
    if backend == "local" and is_url(location):
        if location.startswith("file://"):
            location = location[len("file://") :]
        else:
            backend = "fsspec"
    try:
        factory = _backends[backend]
    except KeyError:
        known = ", ".join(sorted(_backends))
        raise UnknownStoreBackendError(
            f"unknown store backend {backend!r}; known backends: {known} "
            "(register others with zoblib.register_store_backend)"
        ) from None
    store = factory(location, **options)
    if not isinstance(store, StoreBackend):
        raise TypeError(f"store backend {backend!r} made {store!r}, which is not a StoreBackend")
    return store
