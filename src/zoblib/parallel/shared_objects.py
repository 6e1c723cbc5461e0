"""Objects an engine already holds in its workers, pickled into batches as their position only.

joblib's dask backend takes ``scatter=[...]``: objects sent to every worker once, before the
call, so that batches naming them do not carry them again. zoblib pickles a batch itself, so
the backend lists those objects (by ``id``) for :mod:`~zoblib.parallel.pickling`, which pickles
each one as ``shared_object(position)``; the engine hands the worker its own copies with the
batch, and the worker unpickles the batch inside :func:`sharing` them.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

from zoblib.errors import ZoblibError

_SHARED: contextvars.ContextVar[Sequence[Any] | None] = contextvars.ContextVar(
    "zoblib_shared_objects", default=None
)


@contextlib.contextmanager
def sharing(objects: Sequence[Any]) -> Iterator[None]:
    """Resolve the ``shared_object(i)`` of batches unpickled in this block to ``objects[i]``."""
    token = _SHARED.set(objects)
    try:
        yield
    finally:
        _SHARED.reset(token)


def shared_object(position: int) -> Any:
    """The engine's copy of the shared object at ``position`` (what a batch unpickles to).

    Raises
    ------
    ZoblibError
        When the batch is unpickled outside :func:`sharing` the engine's objects, or the engine
        sent fewer of them.
    """
    objects = _SHARED.get()
    if objects is None or not 0 <= position < len(objects):
        raise ZoblibError(
            f"a batch names shared object {position} (one of the backend's scatter=[...]), but "
            "the engine handed this worker none at that position"
        )
    return objects[position]
