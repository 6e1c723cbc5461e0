"""Settling the caller's futures from an engine's own (dask's, ray's) on the engine's thread."""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, InvalidStateError
from typing import Any


def copy_outcome(engine_future: Any, future: Future[Any]) -> None:
    """Give ``future`` the result or exception of ``engine_future`` (done; has ``.result()``).

    Called on the engine's callback thread. ``future`` may have been cancelled by the caller
    meanwhile (the call ended): its ``set_*`` then raise ``InvalidStateError``, which is nobody's
    concern, and nothing is set.

    Examples
    --------
    >>> done, mine = Future(), Future()
    >>> done.set_result(3)
    >>> copy_outcome(done, mine)
    >>> mine.result()
    3
    """
    if future.cancelled():
        return
    with contextlib.suppress(InvalidStateError):
        try:
            result = engine_future.result()
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
