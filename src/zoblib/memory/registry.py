"""The registry of cache store backends, by name, and the choice of one for a location."""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from zoblib.errors import CacheWarning, UnknownStoreBackendError
from zoblib.memory.local_store import STORE_FOLDER_NAME, LocalStoreBackend
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
        If ``backend_name`` is not a string or ``backend`` is not a ``StoreBackend`` subclass
        (joblib's errors and messages).

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
        raise ValueError(f"Store backend name should be a string, {backend_name!r} given.")
    if not (isinstance(backend, type) and issubclass(backend, StoreBackend)):
        raise ValueError(
            f"Store backend should inherit StoreBackendBase (zoblib.memory.StoreBackend), {backend!r} given."
        )
    _backends[backend_name] = backend


def is_url(location: str) -> bool:
    """Whether ``location`` names an fsspec file system (``s3://...``, ``memory://...``)."""
    return "://" in location


def make_store_backend(
    backend: str | StoreBackend, location: Any, backend_options: Mapping[str, Any] | None
) -> StoreBackend:
    """The store whose own folder is ``location`` (a path, a URL or a store, used as it is).

    A URL location goes to the fsspec backend when ``backend`` is the default ``'local'``,
    except ``file://`` URLs, which are local paths (so results can be memory-mapped). A ``~``
    is expanded, as joblib does.

    Raises
    ------
    UnknownStoreBackendError
        If no backend is registered under ``backend`` (also a ``TypeError``, as joblib's).
    TypeError
        If ``location`` is neither a path, a URL nor a store.
    """
    if isinstance(backend, StoreBackend):
        return backend
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
    if not is_url(location):
        location = os.path.expanduser(location)
    try:
        factory = _backends[backend]
    except KeyError:
        known = ", ".join(sorted(_backends))
        raise UnknownStoreBackendError(
            f"Unknown location {location} or backend {backend}: no store backend is registered "
            f"as {backend!r}; known backends: {known} (register others with "
            "zoblib.register_store_backend)"
        ) from None
    store = factory(location, **_accepted_options(backend, factory, backend_options or {}))
    if not isinstance(store, StoreBackend):
        raise TypeError(f"store backend {backend!r} made {store!r}, which is not a StoreBackend")
    return store


def _accepted_options(backend: str, factory: BackendFactory, options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``backend_options`` the store's constructor takes; the others are dropped with a warning.

    joblib's stores read the options they know and ignore the rest, so code written for joblib
    may pass some (``backend_options={"compress": 3}``) that a zoblib store has no parameter for.
    """
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: let it check its own options
        return dict(options)
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return dict(options)
    named = {
        parameter.name
        for parameter in parameters
        if parameter.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
    ignored = sorted(set(options) - named)
    if ignored:
        warnings.warn(
            CacheWarning(
                f"the {backend!r} store backend ignores the backend_options {', '.join(ignored)} "
                f"(it takes {', '.join(sorted(named - {'location'})) or 'none'}), as joblib ignores "
                "options its stores do not know"
            ),
            stacklevel=5,
        )
    return {key: value for key, value in options.items() if key not in ignored}


def memory_store_backend(
    backend: str, location: Any, backend_options: Mapping[str, Any] | None
) -> StoreBackend | None:
    """The store of ``Memory(location, backend=..., backend_options=...)``, or None.

    A path or URL is the user's cache folder: the store's own folder is its ``zoblib``
    subfolder (joblib's is ``joblib``), so both libraries can share a location. ``None`` gives
    no store; so does a location of any other type, with joblib's warning.
    """
    if location is None or isinstance(location, StoreBackend):
        return location
    if isinstance(location, os.PathLike):
        location = os.fspath(location)
    if not isinstance(location, str):
        warnings.warn(
            CacheWarning(
                f"Instantiating a backend using a {type(location).__name__} as a location is "
                "not supported by zoblib. Returning None instead."
            ),
            stacklevel=3,
        )
        return None
    return make_store_backend(backend, _join(location, STORE_FOLDER_NAME), backend_options)


def _join(location: str, name: str) -> str:
    if is_url(location):
        return f"{location.rstrip('/')}/{name}"
    return os.path.join(location, name)
