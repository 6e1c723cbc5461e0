"""Telling a changed function from two functions that share one cache folder (joblib's rules).

A function's folder is named after its module and qualified name, so two functions of one name
in one module (or two lambdas on one line) share a folder. When the code recorded for a folder
differs from the function's, :func:`collision_messages` says, with joblib's
``JobLibCollisionWarning`` texts, whether that may be such a collision rather than an edit.
"""

from __future__ import annotations

import os
import textwrap
import tokenize
from collections.abc import Callable, Mapping
from typing import Any

from zoblib.memory.keys import CodeRecord, display_name

#: The first line of a function without source (typed at the prompt, made by ``eval``).
NO_SOURCE_LINE = -1


def collision_messages(func: Callable[..., Any], stored: Mapping[str, Any], record: CodeRecord) -> list[str]:
    """joblib's collision warnings for ``func``, whose folder records other code (``stored``).

    Parameters
    ----------
    func
        The cached function.
    stored
        The code record found in its folder (``digest``, ``source``, ``source_file``,
        ``first_line``), which differs from ``record``.
    record
        ``func``'s own code record.

    Returns
    -------
    list of str
        "Cannot detect name collisions ..." for a lambda or when neither version has source
        (a collision and an edit look the same), and "Possible name collisions ..." when the
        recorded function still stands unchanged at its recorded place: another function took
        its name. Empty for an ordinary edit.
    """
    name = display_name(func)
    old_first_line = stored.get("first_line")
    messages = []
    if (old_first_line == record.first_line == NO_SOURCE_LINE) or name == "<lambda>":
        described = name
        if record.first_line != NO_SOURCE_LINE:
            described = f"{name} ({record.source_file}:{record.first_line})"
        messages.append(f"Cannot detect name collisions for function '{described}'")
    old_source = stored.get("source")
    old_file = stored.get("source_file") or record.source_file
    if (
        isinstance(old_first_line, int)
        and old_first_line != record.first_line
        and old_first_line != NO_SOURCE_LINE
        and isinstance(old_source, str)
        and old_file is not None
        and _still_in_place(old_file, old_first_line, old_source)
    ):
        messages.append(
            f"Possible name collisions between functions '{name}' ({old_file}:{old_first_line}) "
            f"and '{name}' ({record.source_file}:{record.first_line})"
        )
    return messages


def _still_in_place(source_file: str, first_line: int, source: str) -> bool:
    """Whether ``source`` is still the text of ``source_file`` from line ``first_line`` on."""
    if not os.path.exists(source_file):
        # joblib's rule: doctests have no file, and are assumed to collide.
        return source_file.startswith("<doctest ")
    try:
        with tokenize.open(source_file) as handle:
            lines = handle.readlines()
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    # The recorded source is dedented (methods, nested functions): dedent the file's lines too.
    count = len(source.rstrip("\n").split("\n"))
    on_disk = textwrap.dedent("".join(lines[first_line - 1 : first_line - 1 + count]))
    return on_disk.rstrip() == source.rstrip()
