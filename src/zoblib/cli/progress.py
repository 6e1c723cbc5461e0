"""A byte-counting progress bar on stderr: tqdm when installed, else click's own."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

#: Archives smaller than this get no bar unless asked for (they take well under a second).
AUTO_PROGRESS_NBYTES = 64 << 20


def wants_progress(requested: bool | None, total_nbytes: int) -> bool:
    """``--progress``/``--no-progress`` if given; else a bar for big archives on a terminal."""
    if requested is not None:
        return requested
    return sys.stderr.isatty() and total_nbytes >= AUTO_PROGRESS_NBYTES


@contextlib.contextmanager
def byte_progress(label: str, total_nbytes: int, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A function to call with each number of bytes done; it draws nothing unless ``enabled``."""
    if not enabled:
        yield lambda nbytes: None
        return
    try:  # optional: a better bar (rates, time left) when installed
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:
        bar: Any
        with click.progressbar(length=total_nbytes, label=label, file=sys.stderr) as bar:
            yield bar.update
        return
    with tqdm(total=total_nbytes, desc=label, unit="B", unit_scale=True, file=sys.stderr) as bar:
        yield bar.update
