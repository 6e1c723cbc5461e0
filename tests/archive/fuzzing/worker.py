"""The fuzzer's worker: reads damaged archives every way zoblib can, and says how each ended.

Run as a script by :mod:`fuzzing.runner`: ``python worker.py EXPECTED.pkl LIMIT REPORT`` (bytes of
address space it may use, and of peak memory past which it reports a case and exits). It
reads one JSON line per case from stdin (``{"path": ...}``) and writes one JSON line per
reading path (``{"op": ..., "outcome": ..., "detail": ...}``), then ``{"done": true}``, so
when it dies the parent knows which reading path killed it.

Outcomes: ``ok`` (the right data), ``archive-error`` (an ``ArchiveError`` naming the file),
``unnamed-archive-error`` (one whose message does not name it), ``not-found``
(``FileNotFoundError``), ``wrong-data``, ``other-exception``.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import resource
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import zoblib

#: The reading paths, in the order they run.
OPERATIONS = ("load", "mmap", "lazy", "mmap_verify", "verify")
_MAX_DEPTH = 50


def walk_arrays(value: Any, depth: int = 0) -> Iterator[Any]:
    """Every array-like (ndarray, memmap, LazyArray) inside dicts, lists and tuples."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, (np.ndarray, zoblib.LazyArray)):
        yield value
        if isinstance(value, np.ma.MaskedArray):
            yield np.ma.getmaskarray(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from walk_arrays(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from walk_arrays(item, depth + 1)


def difference(expected: Any, actual: Any, where: str = "value") -> str | None:
    """Where ``actual`` differs from ``expected`` (reading every array), or ``None``."""
    if isinstance(expected, np.ma.MaskedArray):
        if not isinstance(actual, np.ma.MaskedArray):
            return f"{where}: a {type(actual).__name__}, not a masked array"
        return difference(expected.data, actual.data, f"{where}.data") or difference(
            np.ma.getmaskarray(expected), np.ma.getmaskarray(actual), f"{where}.mask"
        )
    if isinstance(expected, np.ndarray):
        if not isinstance(actual, (np.ndarray, zoblib.LazyArray)):
            return f"{where}: a {type(actual).__name__}, not an array"
        values = np.asarray(actual)
        if values.dtype != expected.dtype or values.shape != expected.shape:
            return f"{where}: {values.dtype}{values.shape}, not {expected.dtype}{expected.shape}"
        if values.tobytes() != expected.tobytes():
            stored = np.frombuffer(values.tobytes(), np.uint8)
            wrong = int(np.count_nonzero(stored != np.frombuffer(expected.tobytes(), np.uint8)))
            return f"{where}: different values ({wrong} bytes differ)"
        return None
    if type(actual) is not type(expected):
        return f"{where}: a {type(actual).__name__}, not a {type(expected).__name__}"
    if isinstance(expected, dict):
        if list(actual) != list(expected):
            return f"{where}: keys {list(actual)[:10]}, not {list(expected)}"
        for key in expected:
            found = difference(expected[key], actual[key], f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(expected, (list, tuple)):
        if len(actual) != len(expected):
            return f"{where}: length {len(actual)}, not {len(expected)}"
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            found = difference(e, a, f"{where}[{index}]")
            if found:
                return found
        return None
    return None if actual == expected else f"{where}: {actual!r:.80}, not {expected!r:.80}"


def _lazy_pairs(expected: Any, actual: Any) -> Iterator[tuple[np.ndarray[Any, Any], Any]]:
    if isinstance(actual, zoblib.LazyArray) and isinstance(expected, np.ndarray):
        yield expected, actual
    elif isinstance(expected, dict) and isinstance(actual, dict):
        for key in expected.keys() & actual.keys():
            yield from _lazy_pairs(expected[key], actual[key])
    elif isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        for e, a in zip(expected, actual, strict=False):
            yield from _lazy_pairs(e, a)


def _selections(shape: tuple[int, ...]) -> list[tuple[Any, ...]]:
    if len(shape) == 1:
        n = shape[0]
        return [(slice(n // 3, n // 2),), (slice(None, None, 7),), (slice(-5, None),), (n // 2,)]
    return [tuple(slice(1, 7) for _ in shape), tuple(slice(None, None, 5) for _ in shape)]


def check_lazy(expected: Any, actual: Any) -> str | None:
    """Slices of every ``LazyArray`` of ``actual`` against the same slices of ``expected``."""
    for original, lazy in _lazy_pairs(expected, actual):
        if tuple(lazy.shape) != original.shape:
            return f"LazyArray of shape {lazy.shape}, not {original.shape}"
        for selection in _selections(original.shape):
            found = difference(np.asarray(original[selection]), np.asarray(lazy[selection]), f"[{selection}]")
            if found:
                return f"LazyArray slice {found}"
    return None


def run_operation(operation: str, path: str, expected: Any) -> tuple[str, str]:
    """Run one reading path on the archive at ``path``: (outcome, detail)."""
    steps: dict[str, Callable[[], str | None]] = {
        "load": lambda: difference(expected, zoblib.load(path, ensure_native_byte_order=False)),
        "mmap": lambda: _read_all_then_compare(expected, zoblib.load(path, mmap_mode="r")),
        "lazy": lambda: check_lazy(expected, zoblib.load(path, mmap_mode="r")),
        "mmap_verify": lambda: difference(expected, zoblib.load(path, mmap_mode="r", verify=True)),
        "verify": lambda: zoblib.verify(path),
    }
    try:
        problem = steps[operation]()
        return ("ok", "") if problem is None else ("wrong-data", problem)
    except zoblib.ArchiveError as exc:
        named = path in str(exc)
        return ("archive-error" if named else "unnamed-archive-error"), _describe(exc)
    except FileNotFoundError as exc:
        return "not-found", _describe(exc)
    except BaseException as exc:  # the contract allows nothing else: report it, whatever it is
        return "other-exception", _describe(exc)
    finally:
        gc.collect()  # drop memory maps of this archive before the next case


def _read_all_then_compare(expected: Any, value: Any) -> str | None:
    for array in walk_arrays(value):
        np.asarray(array)
    return difference(expected, value)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and not isinstance(exc, zoblib.ArchiveError):
        text += f" (from {type(cause).__qualname__}: {str(cause)[:200]})"
    return text[:600]


def main() -> None:
    expected_path, memory_limit, memory_report = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(expected_path, "rb") as file:
        expected = pickle.load(file)
    # Replies go to a private copy of stdout; anything else printing to fd 1 lands in stderr.
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    for line in sys.stdin:
        case = json.loads(line)
        for operation in OPERATIONS:
            outcome, detail = run_operation(operation, case["path"], expected)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
            if peak > memory_report:
                # The peak only grows: report this reading path and make way for a fresh process.
                detail = f"peak memory {peak >> 20} MiB (after outcome {outcome}: {detail})"[:600]
                replies.write(
                    json.dumps({"op": operation, "outcome": "excess-memory", "detail": detail}) + "\n"
                )
                replies.write(json.dumps({"done": True, "exiting": True}) + "\n")
                return
            replies.write(json.dumps({"op": operation, "outcome": outcome, "detail": detail}) + "\n")
        replies.write(json.dumps({"done": True}) + "\n")


if __name__ == "__main__":
    main()
