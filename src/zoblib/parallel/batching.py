"""How many tasks go to a worker at once, and how many batches are in flight.

Sending a task to a process costs a round trip (pickling, two pipe hops, waking a process):
tens of microseconds to a millisecond. Tiny tasks are therefore grouped into batches whose
size :class:`BatchSizer` adapts so that a batch runs for about ``TARGET_BATCH_SECONDS``.
"""

from __future__ import annotations

import ast
import functools
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

_T = TypeVar("_T")

#: Aim for batches running this long: long enough to hide the round trip, short enough to
#: keep workers evenly loaded.
TARGET_BATCH_SECONDS = 0.05
#: Never put more tasks than this in one batch.
MAX_BATCH_SIZE = 100_000

_OPERATORS: dict[type[ast.operator], Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Div: lambda a, b: int(a / b),
}


def parse_pre_dispatch(pre_dispatch: int | str, n_jobs: int) -> int | None:
    """Read ``pre_dispatch``: the number of batches kept in flight, or None for ``'all'``.

    Parameters
    ----------
    pre_dispatch
        ``'all'``, an int, or an arithmetic expression of ``n_jobs`` such as
        ``'2 * n_jobs'`` (evaluated safely, without ``eval``).
    n_jobs
        The call's effective number of workers.

    Returns
    -------
    int or None
        At least ``n_jobs``, so that no worker waits; None means no limit.
    """
    if pre_dispatch == "all":
        return None
    if isinstance(pre_dispatch, bool):
        raise ValueError(
            f"pre_dispatch must be 'all', an int or an expression of n_jobs, got {pre_dispatch!r}"
        )
    if isinstance(pre_dispatch, int):
        value = pre_dispatch
    elif isinstance(pre_dispatch, str):
        try:
            value = _evaluate(_parsed(pre_dispatch), n_jobs)
        except (SyntaxError, ValueError, ZeroDivisionError) as exc:
            raise ValueError(
                f"pre_dispatch must be 'all', an int or an expression of n_jobs such as "
                f"'2 * n_jobs', got {pre_dispatch!r}"
            ) from exc
    else:
        raise ValueError(f"pre_dispatch must be 'all', an int or a string, got {pre_dispatch!r}")
    return max(value, n_jobs, 1)


@functools.lru_cache(maxsize=64)
def _parsed(expression: str) -> ast.expr:
    """The parsed ``pre_dispatch`` expression, parsed once per distinct string.

    Every ``Parallel()`` reads its ``pre_dispatch``, also deep in recursive calls; CPython 3.11's
    parser can fail near the recursion limit with a ``SystemError`` instead of the
    ``RecursionError`` the caller would see, so the default ``'2 * n_jobs'`` is parsed once.
    """
    return ast.parse(expression, mode="eval").body


def _evaluate(node: ast.expr, n_jobs: int) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name) and node.id == "n_jobs":
        return n_jobs
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left, n_jobs), _evaluate(node.right, n_jobs)
        return _OPERATORS[type(node.op)](left, right)
    raise ValueError("unsupported expression")


def check_batch_size(batch_size: int | str) -> int | None:
    """Read ``batch_size``: a positive int, or None for ``'auto'``."""
    if batch_size == "auto":
        return None
    if isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > 0:
        return batch_size
    raise ValueError(f"batch_size must be 'auto' or a positive int, got {batch_size!r}")


class BatchSizer:
    """Choose the size of the next batch from how long the previous ones ran.

    Parameters
    ----------
    fixed
        A size given by the user (no adaptation), or None for automatic sizing.
    n_jobs
        The number of workers, to keep enough batches for all of them.
    """

    def __init__(self, fixed: int | None, n_jobs: int) -> None:
        self.fixed = fixed
        self.n_jobs = n_jobs
        self.seconds_per_task: float | None = None

    def next_size(self, remaining: int | None) -> int:
        """Return the size of the next batch.

        Parameters
        ----------
        remaining
            Tasks not dispatched yet, when the input has a length; the tail is split so that
            every worker gets a part of it.
        """
        if self.fixed is not None:
            return self.fixed
        if self.seconds_per_task is None:
            return 1  # nothing measured yet: a slow task must not hold others hostage
        size = int(TARGET_BATCH_SECONDS / max(self.seconds_per_task, 1e-9))
        if remaining is not None:
            size = min(size, math.ceil(remaining / (2 * self.n_jobs)))
        return max(1, min(size, MAX_BATCH_SIZE))

    def record(self, size: int, seconds: float) -> None:
        """Take the running time of a finished batch of ``size`` tasks into account."""
        if size <= 0:
            return
        per_task = seconds / size
        if self.seconds_per_task is None:
            self.seconds_per_task = per_task
        else:
            # Smooth, but let a change of regime show within a few batches.
            self.seconds_per_task = 0.5 * self.seconds_per_task + 0.5 * per_task


class InputReader(Generic[_T]):
    """Take tasks from ``Parallel``'s input in reads, and tell when the input has ended.

    Parameters
    ----------
    tasks
        The input.
    look_ahead
        Take one task more than asked when a read is full, to tell whether the input ended
        right at its end (kept for the next read). Without it, an input that ends at a read's
        end is seen to end only by the next, empty read.
    """

    def __init__(self, tasks: Iterable[_T], look_ahead: bool) -> None:
        self._tasks: Iterator[_T] = iter(tasks)
        self._look_ahead = look_ahead
        self._kept: list[_T] = []

    def take(self, count: int) -> tuple[list[_T], bool]:
        """Return up to ``count`` tasks, and whether the input has no more.

        An error raised by the input while looking ahead is raised by the next call, after
        the caller had the tasks read before it, as it would have been without looking ahead.
        """
        tasks = self._kept + list(itertools.islice(self._tasks, count - len(self._kept)))
        self._kept = []
        if len(tasks) < count:
            return tasks, True
        if not self._look_ahead:
            return tasks, False
        try:
            self._kept = list(itertools.islice(self._tasks, 1))
        except Exception as error:
            self._tasks = _raise_when_read(error)
            return tasks, False
        return tasks, not self._kept


def _raise_when_read(error: Exception) -> Iterator[_T]:
    """An input whose next read raises ``error``, raised by the input earlier."""
    raise error
    yield  # a generator: the error waits for the first read
