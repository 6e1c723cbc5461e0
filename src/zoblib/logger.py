"""joblib's small logging helpers: ``Logger`` (messages to :mod:`logging`) and ``PrintTime``.

joblib's ``Memory`` and ``MemorizedFunc`` derive from ``Logger``; zoblib's do not (they use
:mod:`logging` and :mod:`warnings` directly), but code written against ``joblib.Logger`` and
``joblib.PrintTime`` keeps working with these.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pprint
import shutil
import sys
import time
from typing import Any

#: Rotated copies ``PrintTime`` keeps of an existing log file (``<log>.1`` ... ``<log>.9``).
LOG_BACKUPS = 9
#: The file ``PrintTime(logdir=...)`` writes in that folder.
LOG_FILE_NAME = "zoblib.log"


def format_time(seconds: float) -> str:
    """``'12.3s, 0.2min'``: a duration in seconds and in minutes, as joblib prints them.

    Examples
    --------
    >>> format_time(90)
    '90.0s, 1.5min'
    """
    seconds = max(seconds, 0.0)
    return f"{seconds:.1f}s, {seconds / 60.0:.1f}min"


def pformat(obj: Any, indent: int = 0, depth: int = 3) -> str:
    """``pprint.pformat`` of ``obj``, with numpy arrays shortened (joblib's ``pformat``)."""
    if "numpy" not in sys.modules:  # do not import numpy only to format a message
        return pprint.pformat(obj, indent=indent, depth=depth)
    import numpy as np

    with np.printoptions(precision=6, threshold=64, edgeitems=1):
        return pprint.pformat(obj, indent=indent, depth=depth)


class Logger:
    """Send messages to the :mod:`logging` logger ``name``, prefixed with ``[<self>]``.

    Parameters
    ----------
    depth
        How deep :meth:`format` prints nested objects.
    name
        The logger's name; ``None`` means ``'zoblib'`` (joblib's is ``'joblib'``).

    Examples
    --------
    >>> Logger(depth=1).format({"a": [1, 2]})
    "{'a': [...]}"
    """

    def __init__(self, depth: int = 3, name: str | None = None) -> None:
        self.depth = depth
        self._name = name or "zoblib"

    def warn(self, msg: str) -> None:
        """Log ``msg`` at the WARNING level."""
        logging.getLogger(self._name).warning("[%s]: %s", self, msg)

    def info(self, msg: str) -> None:
        """Log ``msg`` at the INFO level (joblib logs it to the root logger; this to ``name``)."""
        logging.getLogger(self._name).info("[%s]: %s", self, msg)

    def debug(self, msg: str) -> None:
        """Log ``msg`` at the DEBUG level."""
        logging.getLogger(self._name).debug("[%s]: %s", self, msg)

    def format(self, obj: Any, indent: int = 0) -> str:
        """Return ``obj`` pretty-printed, nested no deeper than ``depth``."""
        return pformat(obj, indent=indent, depth=self.depth)


class PrintTime:
    """Print the time elapsed since the previous call (or the start) with a message.

    Messages go to standard error and, with ``logfile`` or ``logdir``, are appended to a log
    file. An existing log file is kept as ``<log>.1`` (older ones shift to ``.2`` ... ``.9``).
    As in joblib, failing to write the log (several processes at once, a full disk) never
    fails the computation.

    Parameters
    ----------
    logfile
        The log file's path.
    logdir
        A folder to write ``zoblib.log`` in (joblib's is ``joblib.log``).

    Raises
    ------
    ValueError
        If both ``logfile`` and ``logdir`` are given.

    Examples
    --------
    >>> print_time = PrintTime()
    >>> print_time("loaded")  # doctest: +SKIP
    loaded: 0.0s, 0.0min
    """

    def __init__(
        self, logfile: str | os.PathLike[str] | None = None, logdir: str | os.PathLike[str] | None = None
    ) -> None:
        if logfile is not None and logdir is not None:
            raise ValueError("Cannot specify both logfile and logdir")
        self.last_time = time.time()
        self.start_time = self.last_time
        if logdir is not None:
            logfile = os.path.join(logdir, LOG_FILE_NAME)
        self.logfile = None if logfile is None else os.fspath(logfile)
        if self.logfile is not None:
            self._start_log(self.logfile)

    def _start_log(self, logfile: str) -> None:
        with contextlib.suppress(OSError):
            folder = os.path.dirname(logfile)
            if folder:
                os.makedirs(folder, exist_ok=True)
            if os.path.exists(logfile):
                _rotate(logfile)
            with open(logfile, "w") as handle:
                handle.write("\nLogging zoblib python script\n")
                handle.write(f"\n---{time.ctime(self.last_time)}---\n")

    def __call__(self, msg: str = "", total: bool = False) -> None:
        """Print ``msg`` with the time since the previous call, or since the start if ``total``."""
        now = time.time()
        if total:
            lapse = now - self.start_time
            full_msg = f"{msg}: {lapse:.2f}s, {lapse / 60:.1f} min"
        else:
            full_msg = f"{msg}: {format_time(now - self.last_time)}"
        print(full_msg, file=sys.stderr)
        if self.logfile is not None:
            with contextlib.suppress(OSError), open(self.logfile, "a") as handle:
                print(full_msg, file=handle)
        self.last_time = time.time()


def _rotate(logfile: str) -> None:
    """Shift ``<log>.1`` ... ``<log>.8`` up by one and copy the log to ``<log>.1``.

    A copy, not a move, so that a process following the log does not lose it (joblib's reason).
    """
    for number in range(LOG_BACKUPS - 1, 0, -1):
        older = f"{logfile}.{number}"
        if os.path.exists(older):
            with contextlib.suppress(OSError):
                os.replace(older, f"{logfile}.{number + 1}")
    with contextlib.suppress(OSError):
        shutil.copy(logfile, f"{logfile}.1")
