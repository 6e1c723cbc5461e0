"""joblib's ``verbose`` messages for cached calls, printed to stdout as joblib prints them."""

from __future__ import annotations

import pprint
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from zoblib.logger import format_time
from zoblib.memory.keys import display_name, unwrap_callable

#: Longest formatted argument in a "Calling" message before it is cut (joblib's limits).
_ARGUMENT_LIMIT = 1500
_ARGUMENT_KEPT = 700


def _format_argument(value: Any) -> str:
    with np.printoptions(precision=6, threshold=64, edgeitems=1):
        text = pprint.pformat(value, indent=2, depth=3)
    if len(text) > _ARGUMENT_LIMIT:
        text = text[:_ARGUMENT_KEPT] + "..."
    return text


def format_signature(
    func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[str, str]:
    """The function's dotted path and the call as text: ``('mod.f', 'f(1, y=2)')``."""
    target = unwrap_callable(func)
    name = display_name(func)
    module = str(getattr(target, "__module__", "") or "")
    qualname = str(getattr(target, "__qualname__", name))
    path = ".".join(part for part in (module, qualname.replace(".<locals>", "")) if part)
    pieces = []
    previous_length = 0
    for value in args:
        text = _format_argument(value)
        if previous_length > 80:
            text = "\n" + text
        previous_length = len(text)
        pieces.append(text)
    pieces.extend(f"{key}={_format_argument(value)}" for key, value in kwargs.items())
    return path, f"{name}({', '.join(pieces)})"


def calling_message(func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The banner printed before computing (joblib's ``format_call``)."""
    path, signature = format_signature(func, args, kwargs)
    return f"{80 * '_'}\n[Memory] Calling {path}...\n{signature}"


def duration_message(func: Callable[..., Any], seconds: float, context: str = "") -> str:
    """``'______f - 0.1s, 0.0min'`` right-aligned on 80 columns, after a call or a load."""
    text = f"{display_name(func)} {context}- {format_time(seconds)}"
    return max(0, 80 - len(text)) * "_" + text


def loading_message(
    name: str,
    metadata: Mapping[str, Any] | None,
    since_start: float | None,
    verbose: int,
    location: str,
) -> str:
    """``'[Memory]0.0s, 0.0min: Loading f(x=1)...'`` (with the entry's path when verbose >= 10).

    ``name`` is the function's name as :func:`~zoblib.memory.keys.display_name` gives it.
    """
    elapsed = f"{format_time(since_start): <16}" if since_start is not None else ""
    signature = name
    if metadata is not None and isinstance(metadata.get("input_args"), dict):
        signature += "({})".format(", ".join(f"{k}={v}" for k, v in metadata["input_args"].items()))
    message = f"[Memory]{elapsed}: Loading {signature}"
    return f"{message}..." if verbose < 10 else f"{message} from {location}"
