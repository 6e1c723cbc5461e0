"""``expires_after``: a ``cache_validation_callback`` that ages results out."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping
from typing import Any


def expires_after(
    days: float = 0,
    seconds: float = 0,
    microseconds: float = 0,
    milliseconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    weeks: float = 0,
) -> Callable[[Mapping[str, Any]], bool]:
    """A ``cache_validation_callback`` that rejects results computed longer ago than a duration.

    Parameters
    ----------
    days, seconds, microseconds, milliseconds, minutes, hours, weeks : float
        The duration, as for :class:`datetime.timedelta`.

    Returns
    -------
    callable
        ``callback(metadata) -> bool``: True while the entry's computation (its metadata's
        ``time``) is younger than the duration.

    Examples
    --------
    >>> import time
    >>> callback = expires_after(minutes=5)
    >>> callback({"time": time.time() - 60}), callback({"time": time.time() - 600})
    (True, False)
    """
    delta = datetime.timedelta(
        days=days,
        seconds=seconds,
        microseconds=microseconds,
        milliseconds=milliseconds,
        minutes=minutes,
        hours=hours,
        weeks=weeks,
    )
    limit = delta.total_seconds()

    def cache_validation_callback(metadata: Mapping[str, Any]) -> bool:
        computed_at = metadata.get("time")
        if not isinstance(computed_at, (int, float)):
            return False
        return time.time() - computed_at < limit

    return cache_validation_callback
