"""Printing for people (aligned tables, sizes, ages) and for scripts (JSON on stdout)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any

import click

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(nbytes: int | None) -> str:
    """A byte count for people: ``'1.5 MiB'``; ``'-'`` when unknown.

    Examples
    --------
    >>> format_bytes(512), format_bytes(1536), format_bytes(None)
    ('512 B', '1.5 KiB', '-')
    """
    if nbytes is None:
        return "-"
    value = float(nbytes)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_shape(shape: Sequence[int] | None) -> str:
    """A shape for people: ``'300 x 400'``, ``'()'`` for a scalar, ``'-'`` when unknown.

    Examples
    --------
    >>> format_shape((300, 400)), format_shape((7,)), format_shape(())
    ('300 x 400', '7', '()')
    """
    if shape is None:
        return "-"
    return " x ".join(map(str, shape)) if len(shape) else "()"


def format_ratio(logical: int | None, stored: int | None) -> str:
    """How many times smaller the stored bytes are: ``'4.0x'``; ``'-'`` when unknown.

    Examples
    --------
    >>> format_ratio(4096, 1024), format_ratio(4096, None)
    ('4.0x', '-')
    """
    ratio = compression_ratio(logical, stored)
    return "-" if ratio is None else f"{ratio:.1f}x"


def compression_ratio(logical: int | None, stored: int | None) -> float | None:
    """``logical / stored``, rounded to 3 decimals; ``None`` when either is unknown or 0.

    Examples
    --------
    >>> compression_ratio(1000, 300), compression_ratio(1000, 0)
    (3.333, None)
    """
    if not logical or not stored:
        return None
    return round(logical / stored, 3)


def format_age(timestamp: float | None, *, now: float | None = None) -> str:
    """How long ago ``timestamp`` (seconds since the epoch) was: ``'3m ago'``, ``'2d ago'``.

    Examples
    --------
    >>> format_age(1000.0, now=1090.0), format_age(0.0, now=3 * 86400.0), format_age(None)
    ('1m ago', '3d ago', '-')
    """
    if timestamp is None:
        return "-"
    seconds = max(0.0, (time.time() if now is None else now) - timestamp)
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{math.floor(seconds / length)}{unit} ago"
    return f"{math.floor(seconds)}s ago"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> str:
    """Rows under headers, columns two spaces apart; columns in ``right`` are right-aligned.

    Examples
    --------
    >>> print(render_table(["NAME", "SIZE"], [["a", "1 B"], ["bb", "10 B"]], right=[1]))
    NAME  SIZE
    a      1 B
    bb    10 B
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def echo_json(document: Any) -> None:
    """``document`` as indented JSON on stdout (one document per command run)."""
    click.echo(json.dumps(document, indent=2, sort_keys=False))


def fail(message: str) -> None:
    """Print ``zoblib: <message>`` on stderr (the caller exits non-zero)."""
    click.echo(f"zoblib: {message}", err=True)
