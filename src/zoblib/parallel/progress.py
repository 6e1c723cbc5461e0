"""Progress of a call: joblib's ``verbose`` messages and a tqdm-style progress bar."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

#: Seconds between two redraws of the bar on a terminal, and between two lines elsewhere.
TERMINAL_REFRESH = 0.1
LOG_REFRESH = 5.0
BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class Progress:
    """Report how many tasks of a call are done.

    Parameters
    ----------
    verbose
        joblib's levels: 0 silent; above 0, messages at growing intervals; 10 and above, one
        per finished batch. Messages go to standard error (standard output from 50 on).
    progress_bar
        Draw a bar with the rate and the time left on standard error.
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
        self.progress_bar = progress_bar
        self.label = label
        self.total = total
        self.stream = stream
        self.done = 0
        self.started = time.monotonic()
        self._next_message = 1
        self._last_draw = -math.inf
        self._drawn = False

    @property
    def active(self) -> bool:
        """Whether this reports anything at all."""
        return self.verbose > 0 or self.progress_bar

    def begin(self, description: str) -> None:
        """Announce the call (with ``verbose``): which backend, how many workers."""
        self.started = time.monotonic()
        if self.verbose > 0:
            self._message(description)

    def update(self, newly_done: int) -> None:
        """Count ``newly_done`` more finished tasks."""
        self.done += newly_done
        if self.verbose > 0 and (self.verbose >= 10 or self.done >= self._next_message):
            self._message(self._done_text())
            self._next_message = max(self.done + 1, math.ceil(self.done * (1 + 4 / self.verbose)))
        if self.progress_bar:
            self._draw(final=False)

    def set_total(self, total: int) -> None:
        """Learn the number of tasks once the input is exhausted."""
        self.total = total

    def finish(self, completed: bool) -> None:
        """Close the report; ``completed`` is False after an error or an abandoned generator."""
        if self.verbose > 0 and completed:
            self._message(f"{self._done_text()} finished")
        if self.progress_bar:
            self._draw(final=True)
            self._out().write("\n")
            self._out().flush()

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

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def _draw(self, final: bool) -> None:
        now = time.monotonic()
        stream = self._out()
        terminal = stream.isatty()
        if not final and now - self._last_draw < (TERMINAL_REFRESH if terminal else LOG_REFRESH):
            return
        self._last_draw = now
        line = self.bar_text(now - self.started)
        stream.write(("\r" + line) if terminal else (line + ("" if final else "\n")))
        stream.flush()

    def bar_text(self, elapsed: float) -> str:
        """Return the bar's line: ``label:  40%|███▌    | 4/10 [00:01<00:01, 3.9 tasks/s]``."""
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if not rate:
            rate_text = "? tasks/s"
        else:
            rate_text = f"{rate:,.0f} tasks/s" if rate >= 100 else f"{rate:.2f} tasks/s"
        if self.total is None or self.total == 0:
            return f"{self.label}: {self.done} tasks [{_duration(elapsed)}, {rate_text}]"
        fraction = min(self.done / self.total, 1.0)
        left = (self.total - self.done) / rate if rate else math.inf
        eta = _duration(left) if math.isfinite(left) else "?"
        return (
            f"{self.label}: {fraction:4.0%}|{self._bar(fraction)}| {self.done}/{self.total} "
            f"[{_duration(elapsed)}<{eta}, {rate_text}]"
        )

    def _bar(self, fraction: float) -> str:
        encoding = getattr(self._out(), "encoding", None) or "ascii"
        try:
            "█▏".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            filled = int(fraction * BAR_WIDTH)
            return "#" * filled + " " * (BAR_WIDTH - filled)
        eighths = int(fraction * BAR_WIDTH * 8)
        full, part = divmod(eighths, 8)
        partial = " ▏▎▍▌▋▊▉"[part] if full < BAR_WIDTH else ""
        return ("█" * full + partial).ljust(BAR_WIDTH)
