"""Progress bars for long work: tqdm's when it is installed, else a plain text bar of zoblib's.

``Parallel(progress_bar=True)``, ``dump``/``load``/``verify(..., progress=True)`` and the
``zoblib verify`` command all draw through :func:`open_bar`. With tqdm installed the bar is
``tqdm.auto``'s, so a Jupyter notebook gets its widget and a terminal its text bar; without it,
:class:`TextBar` draws the same information (done, total, rate, time left) on standard error.
tqdm is optional (``pip install "zoblib[progress]"``) and imported only when a bar is drawn.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TextIO

#: What ``dump``, ``load`` and ``verify`` accept as ``progress``: a bar on stderr or not, or a
#: function called with ``(bytes_done, bytes_total)`` each time more bytes are done.
ProgressOption = bool | Callable[[int, int], object]

#: Seconds between two redraws of the text bar on a terminal, and between two lines elsewhere.
TERMINAL_REFRESH = 0.1
LOG_REFRESH = 5.0
BAR_WIDTH = 24


class Bar(Protocol):
    """What zoblib needs of a bar: tqdm's names, which :class:`TextBar` shares."""

    total: float | None

    def update(self, n: float = 1) -> object:
        """Count ``n`` more units done."""

    def refresh(self) -> None:
        """Redraw now (after a change of ``total``)."""

    def close(self) -> None:
        """Draw the last state and end the line."""


def tqdm_class() -> type[Any] | None:
    """The bar class of ``tqdm.auto`` (a widget in Jupyter, text elsewhere), or None without tqdm."""
    try:
        module = importlib.import_module("tqdm.auto")
    except ImportError:
        return None
    bar_class: type[Any] = module.tqdm
    return bar_class


def open_bar(
    total: int | None, *, label: str, unit: str, stream: TextIO | None = None, leave: bool = True
) -> Bar:
    """Start a bar of ``total`` units (``None``: unknown yet) on ``stream`` (default: stderr).

    ``unit`` ``"B"`` counts bytes, shown with binary prefixes (``1.00G``); any other unit is a
    plain count (``"tasks"``).
    """
    stream = sys.stderr if stream is None else stream
    in_bytes = unit == "B"
    bar_class = tqdm_class()
    if bar_class is None:
        return TextBar(total, label=label, unit=unit, stream=stream, scale_bytes=in_bytes)
    bar: Bar = bar_class(
        total=total,
        desc=label,
        unit=unit,
        unit_scale=in_bytes,
        unit_divisor=1024 if in_bytes else 1000,
        file=stream,
        leave=leave,
        **_unsized_terminal_shape(stream),
    )
    return bar


def _unsized_terminal_shape(stream: TextIO) -> dict[str, int]:
    """A size for a terminal that reports none (0x0: a fresh pseudo-terminal, some CI runners),
    where tqdm would hide its bar as beyond the last row; nothing to pass otherwise."""
    try:
        if not stream.isatty():
            return {}
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return {}
    shape = {}
    if size.columns == 0:
        shape["ncols"] = 80
    if size.lines == 0:
        shape["nrows"] = 24
    return shape


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _binary(amount: float) -> str:
    for prefix in ("", "Ki", "Mi", "Gi", "Ti"):
        if abs(amount) < 1024 or prefix == "Ti":
            return f"{amount:.0f}{prefix}B" if not prefix else f"{amount:.1f}{prefix}B"
        amount /= 1024
    raise AssertionError("unreachable")


class TextBar:
    """zoblib's own bar, when tqdm is not installed: ``label:  40%|███▌  | 4/10 [00:01<00:01, 3.90 tasks/s]``.

    On a terminal it redraws one line in place (at most every ``TERMINAL_REFRESH`` seconds);
    elsewhere (a log file, a CI job) it writes a line every ``LOG_REFRESH`` seconds.
    """

    def __init__(
        self, total: int | None, *, label: str, unit: str, stream: TextIO, scale_bytes: bool = False
    ) -> None:
        self.total: float | None = total
        self.n = 0
        self.label = label
        self.unit = unit
        self.stream = stream
        self.scale_bytes = scale_bytes
        self.started = time.monotonic()
        self._last_draw = -math.inf
        self._closed = False

    def update(self, n: float = 1) -> None:
        """Count ``n`` more units done."""
        self.n += int(n)
        self._draw(final=False)

    def refresh(self) -> None:
        """Redraw now."""
        self._last_draw = -math.inf
        self._draw(final=False)

    def close(self) -> None:
        """Draw the last state and end the line (once)."""
        if self._closed:
            return
        self._closed = True
        self._draw(final=True)
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, final: bool) -> None:
        now = time.monotonic()
        terminal = self.stream.isatty()
        if not final and now - self._last_draw < (TERMINAL_REFRESH if terminal else LOG_REFRESH):
            return
        self._last_draw = now
        line = self.text(now - self.started)
        self.stream.write(("\r" + line) if terminal else (line + ("" if final else "\n")))
        self.stream.flush()

    def _amount(self, amount: float) -> str:
        return _binary(amount) if self.scale_bytes else str(int(amount))

    def text(self, elapsed: float) -> str:
        """The bar's line after ``elapsed`` seconds: done, total, rate and time left."""
        rate = self.n / elapsed if elapsed > 0 else 0.0
        if not rate:
            rate_text = f"? {self.unit}/s"
        elif self.scale_bytes:
            rate_text = f"{_binary(rate)}/s"
        else:
            rate_text = f"{rate:,.0f} {self.unit}/s" if rate >= 100 else f"{rate:.2f} {self.unit}/s"
        if not self.total:
            done = self._amount(self.n) if self.scale_bytes else f"{self.n} {self.unit}"
            return f"{self.label}: {done} [{_duration(elapsed)}, {rate_text}]"
        fraction = min(self.n / self.total, 1.0)
        left = (self.total - self.n) / rate if rate else math.inf
        eta = _duration(left) if math.isfinite(left) else "?"
        return (
            f"{self.label}: {fraction:4.0%}|{self._bar(fraction)}| "
            f"{self._amount(self.n)}/{self._amount(self.total)} [{_duration(elapsed)}<{eta}, {rate_text}]"
        )

    def _bar(self, fraction: float) -> str:
        encoding = getattr(self.stream, "encoding", None) or "ascii"
        try:
            "█▏".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            filled = int(fraction * BAR_WIDTH)
            return "#" * filled + " " * (BAR_WIDTH - filled)
        eighths = int(fraction * BAR_WIDTH * 8)
        full, part = divmod(eighths, 8)
        partial = " ▏▎▍▌▋▊▉"[part] if full < BAR_WIDTH else ""
        return ("█" * full + partial).ljust(BAR_WIDTH)


class ByteCounter:
    """The bytes a ``dump``, ``load`` or ``verify`` has done, drawn on a bar or told to a function.

    The caller learns the total once it knows it (:meth:`start`), then counts bytes as chunks are
    written or read (:meth:`advance`); counts never pass the total. Code that reports to a
    counter takes ``ByteCounter | None`` and checks for ``None`` once per node, so that a call
    without progress pays nothing per chunk.
    """

    def __init__(self, option: ProgressOption, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream
        self.done = 0
        self.total = 0
        self._callback = None if isinstance(option, bool) else option
        self._bar: Bar | None = None
        self._started = False

    def start(self, total: int) -> None:
        """Learn the total; the bar appears now."""
        self.total = max(int(total), 0)
        self._started = True
        if self._callback is None:
            self._bar = open_bar(self.total, label=self.label, unit="B", stream=self.stream)
        else:
            self._callback(self.done, self.total)

    def advance(self, nbytes: int) -> None:
        """Count ``nbytes`` more bytes done (beyond the total: ignored)."""
        nbytes = min(nbytes, self.total - self.done)
        if nbytes <= 0:
            return
        self.done += nbytes
        if self._bar is not None:
            self._bar.update(nbytes)
        elif self._callback is not None:
            self._callback(self.done, self.total)

    def reach(self, done: int) -> None:
        """Count up to ``done`` bytes in all (a node finished: its bytes are all done)."""
        self.advance(done - self.done)

    def close(self, completed: bool) -> None:
        """End the report; a completed call reaches the total (100 %), a failed one stays put."""
        if completed and self._started:
            self.reach(self.total)
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def check_progress_option(option: object) -> ProgressOption:
    """``option`` if it is a valid ``progress=`` value; else ``TypeError``."""
    if isinstance(option, bool) or callable(option):
        return option
    raise TypeError(
        f"progress must be True, False or a function called with (bytes_done, bytes_total), got {option!r}"
    )


@contextlib.contextmanager
def byte_progress(
    option: ProgressOption, label: str, total: int | None = None, *, stream: TextIO | None = None
) -> Iterator[ByteCounter | None]:
    """A :class:`ByteCounter` for the ``with`` block (started if ``total`` is given), or None.

    ``option`` is a ``progress=`` value: ``False`` gives None (nothing drawn, nothing counted),
    ``True`` a bar on ``stream`` (default: stderr), a function its calls. Leaving the block
    normally shows the total reached; an exception leaves the bar where it stopped, closed.
    """
    option = check_progress_option(option)
    if option is False:
        yield None
        return
    counter = ByteCounter(option, label, stream)
    if total is not None:
        counter.start(total)
    completed = False
    try:
        yield counter
        completed = True
    finally:
        counter.close(completed)
