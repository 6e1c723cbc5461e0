"""The process-wide default of ``load(..., safe=...)``: ``ZOBLIB_SAFE_LOAD`` or :func:`set_safe_load`."""

from __future__ import annotations

import os

#: The environment variable that makes ``safe=True`` the default of ``load`` ("1", "true", "yes").
SAFE_LOAD_VARIABLE = "ZOBLIB_SAFE_LOAD"
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

_configured: bool | None = None


def set_safe_load(enabled: bool | None) -> bool | None:
    """Make ``safe=True`` (or ``False``) the default of :func:`~zoblib.load` in this process.

    Parameters
    ----------
    enabled
        ``True`` or ``False`` for every later ``load`` that does not pass ``safe=``; ``None``
        to follow the ``ZOBLIB_SAFE_LOAD`` environment variable again (the initial state).

    Returns
    -------
    bool or None
        The previous setting, to restore it.

    Examples
    --------
    >>> import zoblib
    >>> previous = zoblib.set_safe_load(True)
    >>> zoblib.safe_load_default()
    True
    >>> _ = zoblib.set_safe_load(previous)
    """
    global _configured
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"set_safe_load takes True, False or None, got {enabled!r}")
    previous, _configured = _configured, enabled
    return previous


def safe_load_default() -> bool:
    """Whether ``load`` without ``safe=`` loads safely: :func:`set_safe_load`, else the environment.

    Examples
    --------
    >>> import zoblib
    >>> isinstance(zoblib.safe_load_default(), bool)
    True
    """
    if _configured is not None:
        return _configured
    return os.environ.get(SAFE_LOAD_VARIABLE, "").strip().lower() in _TRUE_WORDS
