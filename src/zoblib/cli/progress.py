"""When ``zoblib verify`` draws its bar (the bar itself is :func:`zoblib.progress.byte_progress`)."""

from __future__ import annotations

import sys

#: Archives smaller than this get no bar unless asked for (they take well under a second).
AUTO_PROGRESS_NBYTES = 64 << 20


def wants_progress(requested: bool | None, total_nbytes: int) -> bool:
    """``--progress``/``--no-progress`` if given; else a bar for big archives on a terminal."""
    if requested is not None:
        return requested
    return sys.stderr.isatty() and total_nbytes >= AUTO_PROGRESS_NBYTES
