"""``delayed``: capture a function call as a task instead of running it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

#: A task, as joblib spells it: ``(function, args, kwargs)``.
Task = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def delayed(function: Callable[..., Any]) -> Callable[..., Task]:
    """Wrap ``function`` so that calling it returns a task for :class:`~zoblib.Parallel`.

    Parameters
    ----------
    function
        Any callable; with process backends it is pickled with cloudpickle, so lambdas,
        closures and functions defined in ``__main__`` work.

    Returns
    -------
    callable
        Called with the function's arguments, returns the tuple ``(function, args, kwargs)``
        (joblib's form: code that builds such tuples by hand works too).

    Examples
    --------
    >>> from zoblib.parallel import delayed
    >>> delayed(pow)(2, 10)
    (<built-in function pow>, (2, 10), {})
    """
    if not callable(function):
        raise TypeError(f"delayed expects a callable, got {function!r}")

    @functools.wraps(function)
    def make_task(*args: Any, **kwargs: Any) -> Task:
        return function, args, kwargs

    return make_task


def check_task(task: object, index: int) -> Task:
    """Return ``task`` if it has the ``(function, args, kwargs)`` form, else raise ``TypeError``."""
    if type(task) is tuple and len(task) == 3:  # the common case, checked cheaply
        return task
    if isinstance(task, tuple) and len(task) == 3 and callable(task[0]):
        return task
    raise TypeError(
        f"task {index} is {task!r}, not a (function, args, kwargs) tuple: "
        "wrap the function with delayed, as in Parallel()(delayed(f)(x) for x in xs)"
    )
