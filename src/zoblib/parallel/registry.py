"""The registry of parallel backends, by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from zoblib.errors import UnknownBackendError
from zoblib.parallel.backends.base import ParallelBackendBase
from zoblib.parallel.config import nesting_level

BackendFactory = Callable[..., ParallelBackendBase]


def _loky(**params: Any) -> ParallelBackendBase:
    from zoblib.parallel.backends.loky import LokyBackend

    return LokyBackend(**params)


def _multiprocessing(**params: Any) -> ParallelBackendBase:
    from zoblib.parallel.backends.multiprocessing import MultiprocessingBackend

    return MultiprocessingBackend(**params)


def _threading(**params: Any) -> ParallelBackendBase:
    from zoblib.parallel.backends.threading import ThreadingBackend

    return ThreadingBackend(**params)


def _sequential(**params: Any) -> ParallelBackendBase:
    from zoblib.parallel.backends.sequential import SequentialBackend

    return SequentialBackend(**params)


def _dask(**params: Any) -> ParallelBackendBase:
    # Raises UnknownBackendError naming `pip install "dask[distributed]"` when it is missing.
    from zoblib.parallel.backends.dask import DaskBackend

    return DaskBackend(**params)


def _ray(**params: Any) -> ParallelBackendBase:
    # Raises UnknownBackendError naming `pip install ray` when it is missing.
    from zoblib.parallel.backends.ray import RayBackend

    return RayBackend(**params)


# Built-ins import their module on first use: loky costs time to import.
_backends: dict[str, BackendFactory] = {
    "loky": _loky,
    "multiprocessing": _multiprocessing,
    "threading": _threading,
    "sequential": _sequential,
}
_default_name = ["loky"]
# Engines registered when their name is first used (joblib's EXTERNAL_BACKENDS): until then
# BACKENDS holds the backends that need nothing outside this process (joblib's tests make one
# of each, and a dask backend needs a client, a ray one a cluster).
_on_first_use: dict[str, BackendFactory] = {"dask": _dask, "ray": _ray}

#: The registered backend factories by name (read-only; add with register_parallel_backend).
BACKENDS: Mapping[str, BackendFactory] = MappingProxyType(_backends)


def register_parallel_backend(name: str, factory: BackendFactory, make_default: bool = False) -> None:
    """Make a parallel backend available by name to ``Parallel`` and ``parallel_config``.

    Parameters
    ----------
    name
        The name to pass as ``backend=``; registering a name again replaces its factory.
    factory
        Called with the ``backend_params`` of ``parallel_config`` (none otherwise) to make a
        :class:`~zoblib.ParallelBackendBase` instance, usually the backend class itself.
    make_default
        Use this backend when no backend, ``prefer`` or ``require`` says otherwise.

    Examples
    --------
    >>> from zoblib.parallel import Parallel, delayed, register_parallel_backend
    >>> from zoblib.parallel.backends.threading import ThreadingBackend
    >>> register_parallel_backend("my_threads", ThreadingBackend)
    >>> Parallel(n_jobs=2, backend="my_threads")(delayed(abs)(-i) for i in range(3))
    [0, 1, 2]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"a backend name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"the factory of backend {name!r} must be callable, got {factory!r}")
    _backends[name] = factory
    if make_default:
        _default_name[0] = name


def default_backend_name() -> str:
    """Return the name of the backend used when nothing else chooses one."""
    return _default_name[0]


def check_backend(backend: object) -> None:
    """Raise unless ``backend`` is a registered name or a backend object."""
    if isinstance(backend, ParallelBackendBase):
        return
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a name or a ParallelBackendBase instance, got {backend!r}")
    if backend not in _backends and backend in _on_first_use:
        _backends[backend] = _on_first_use[backend]
    if backend not in _backends:
        # "Invalid backend: ..., expected one of [...]" is joblib's text, which callers match.
        message = f"Invalid backend: {backend!r}, expected one of {sorted(_backends)}. "
        if backend in _NOT_PROVIDED:
            message += f"zoblib has no {backend!r} backend yet ({_NOT_PROVIDED[backend]}); "
        raise UnknownBackendError(
            message + "another backend must be registered first with "
            "zoblib.register_parallel_backend(name, factory), which packages providing one do on import."
        )


#: joblib's backends that zoblib does not provide, and what joblib's do.
_NOT_PROVIDED: dict[str, str] = {}


def make_backend(backend: str | ParallelBackendBase, **params: Any) -> ParallelBackendBase:
    """Return a backend object for a registered name (made with ``params``) or the object itself."""
    check_backend(backend)
    if isinstance(backend, ParallelBackendBase):
        made = backend
    else:
        made = _backends[backend](**params)
        if not isinstance(made, ParallelBackendBase):
            raise TypeError(
                f"the factory of backend {backend!r} returned {made!r}, which is not a ParallelBackendBase"
            )
    if made.nesting_level is None:
        # joblib's rule: a backend is at the nesting level of the code that first uses it.
        made.nesting_level = nesting_level()
    return made
