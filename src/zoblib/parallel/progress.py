"""Progress of a call: joblib's ``verbose`` messages and a progress bar (tqdm's when installed)."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from zoblib.parallel.config import nesting_level
from zoblib.progress import Bar, open_bar


class Progress:
    """Report how many tasks of a call are done.

    Parameters
    ----------
    verbose
        joblib's levels: 0 silent; above 0, messages at growing intervals; 10 and above, one
        per finished batch. Messages go to standard error (standard output from 50 on).
    progress_bar
        Draw a bar with the rate and the time left on standard error (``tqdm.auto``'s when tqdm
        is installed, a widget in Jupyter). A call made inside a task of another call (in a
        worker process or thread) draws none: the outer call's bar counts its tasks, and bars
        from many workers would garble one terminal.
    label
        Names the call in messages, e.g. ``Parallel(n_jobs=2)``.
    total
        The number of tasks, when the input has a length.
    stream
        Where the bar goes (default: ``sys.stderr`` when the call starts).
    """

    def __init__(
        self,
        *,
        verbose: int,
        progress_bar: bool,
        label: str,
        total: int | None,
        stream: TextIO | None = None,
    ) -> None:
        self.verbose = verbose
        self.progress_bar = progress_bar and nesting_level() == 0
        self.label = label
        self.total = total
        self.stream = stream
        self.done = 0
        self.started = time.monotonic()
        self._next_message = 1
        self._bar: Bar | None = None

    @property
    def active(self) -> bool:
        """Whether this reports anything at all."""
        return self.verbose > 0 or self.progress_bar

    def begin(self, description: str) -> None:
        """Announce the call (with ``verbose``): which backend, how many workers; start the bar."""
        self.started = time.monotonic()
        if self.verbose > 0:
            self._message(description)
        if self.progress_bar and self._bar is None:
            self._bar = open_bar(self.total, label=self.label, unit="tasks", stream=self.stream)

    def update(self, newly_done: int) -> None:
        """Count ``newly_done`` more finished tasks."""
        self.done += newly_done
        if self.verbose > 0 and (self.verbose >= 10 or self.done >= self._next_message):
            self._message(self._done_text())
            self._next_message = max(self.done + 1, math.ceil(self.done * (1 + 4 / self.verbose)))
        if self._bar is not None:
            self._bar.update(newly_done)

    def set_total(self, total: int) -> None:
        """Learn the number of tasks once the input is exhausted."""
        self.total = total
        if self._bar is not None and self._bar.total != total:
            self._bar.total = total
            self._bar.refresh()

    def finish(self, completed: bool) -> None:
        """Close the report; ``completed`` is False after an error or an abandoned generator.

        The bar is closed either way (where it stopped, after an error), so no half-drawn line
        is left for the next output to run into.
        """
        if self.verbose > 0 and completed:
            self._message(f"{self._done_text()} finished")
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()

    def _done_text(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.total is None:
            return f"Done {self.done:4d} tasks      | elapsed: {elapsed:6.1f}s"
        width = len(str(self.total))
        return f"Done {self.done:{width}d} out of {self.total} | elapsed: {elapsed:6.1f}s"

    def _message(self, text: str) -> None:
        stream = sys.stdout if self.verbose >= 50 else sys.stderr
        stream.write(f"[{self.label}]: {text}\n")
        stream.flush()
