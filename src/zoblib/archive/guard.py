"""The reader's outer wall: whatever an archive holds, reading it ends in zoblib's own errors.

Every way into an archive's bytes (``load``, ``verify``, a lazy array's slice) runs inside
:func:`reading`, which turns any exception that is not already zoblib's (a ``KeyError`` from a
malformed record, ``zlib.error``, ``RecursionError`` from JSON nested 100,000 deep, numpy's
``MemoryError`` for a hostile shape) into an :class:`ArchiveError` naming the file, with the
original as its cause. Strict JSON parsing and the allocation limit live here too: both are the
first checks of what an archive claims.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from zoblib.errors import ArchiveCorruptedError, ArchiveError, ZoblibError

#: The largest JSON document an archive may hold (a record listing a million chunks is ~10 MB).
MAX_JSON_NBYTES = 256 << 20


class AllocationRefused(ValueError):
    """An archive claims an array larger than this machine's memory."""


@contextmanager
def reading(path: str) -> Iterator[None]:
    """Translate any non-zoblib exception raised while reading the archive at ``path``."""
    try:
        yield
    except (ZoblibError, FileNotFoundError):
        raise
    except AllocationRefused as exc:
        raise ArchiveCorruptedError(path, str(exc)) from exc
    except MemoryError as exc:
        raise ArchiveError(path, "there is not enough memory to read this archive") from exc
    except RecursionError as exc:
        raise ArchiveCorruptedError(path, "the archive's contents are nested too deeply to read") from exc
    except Exception as exc:
        raise ArchiveCorruptedError(
            path, f"the archive cannot be read ({type(exc).__name__}: {exc})"
        ) from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(data: bytes | bytearray | str, path: str, what: str) -> Any:
    """``data`` as strict JSON (no NaN or Infinity, bounded size); else ``ArchiveCorruptedError``."""
    if len(data) > MAX_JSON_NBYTES:
        raise ArchiveCorruptedError(path, f"{what} is {len(data)} bytes long, more than any archive writes")
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise ArchiveCorruptedError(path, f"{what} is nested too deeply") from exc
    except (ValueError, TypeError) as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers
        raise ArchiveCorruptedError(path, f"{what} is not valid JSON: {exc}") from exc


def physical_memory() -> int:
    """This machine's memory in bytes (0 where it cannot be told)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def check_allocation(nbytes: int, what: str) -> None:
    """Refuse, before allocating, an array the archive claims that no memory here could hold."""
    limit = physical_memory()
    if limit and nbytes > limit:
        raise AllocationRefused(
            f"{what} claims {nbytes:,} bytes, more than this machine's memory ({limit:,} bytes)"
        )
