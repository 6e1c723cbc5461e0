"""What identifies a cached call: the function's folder name, its code digest and its arguments.

A cached result is found at ``<function id>/<argument hash>``. The function id names a folder
(``<module>/<qualified name>``); the code digest records which version of the function wrote the
results; the argument hash covers the code digest and the call's arguments after defaults are
filled in and ignored names are dropped, so results of an older version of the code are never
returned even by a process that has not noticed the change yet.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import xxhash

from zoblib.hashing import hash as zoblib_hash

#: Longest ``repr`` of one argument kept in an entry's metadata.
INPUT_REPR_LIMIT = 500

_UNSAFE_CHARACTERS = re.compile(r"[^\w.\-]+")


def _safe_component(text: str) -> str:
    """A folder name made of ``text``: ``<locals>`` becomes ``locals``, odd characters ``_``."""
    return _UNSAFE_CHARACTERS.sub("_", text.replace("<", "").replace(">", "")) or "_"


def unwrap_callable(func: Callable[..., Any]) -> Any:
    """The plain function behind a bound method or a ``functools.partial`` (else ``func``)."""
    while True:
        if inspect.ismethod(func):
            func = func.__func__
        elif isinstance(func, functools.partial):
            func = func.func
        else:
            return func


def _main_module_name(func: Callable[..., Any]) -> str:
    # A script's functions all live in "__main__": key them by the script's path too, as joblib
    # does, so two scripts sharing a cache do not clear each other's results. A notebook cell's
    # file name holds the kernel's run number, which is dropped so a restarted kernel hits.
    try:
        filename = inspect.getsourcefile(unwrap_callable(func))
    except TypeError:
        filename = None
    if filename is None:
        return "__main__"
    parts = os.path.abspath(filename).split(os.sep)
    if len(parts) > 2 and parts[-2].startswith("ipykernel_"):
        parts[-2] = "ipykernel"
    if parts[-1].startswith("<ipython-input"):
        pieces = parts[-1].split("-")
        parts[-1] = "-".join(pieces[:2] + pieces[3:])
    mangled = "-".join(parts)
    return "__main__-" + (mangled[:-3] if mangled.endswith(".py") else mangled)


def _callable_instance_call(target: Any) -> Any:
    """The ``__call__`` function of a callable instance of a Python class, else None."""
    if inspect.isfunction(target) or inspect.isclass(target):
        return None
    call = inspect.getattr_static(type(target), "__call__", None)
    return call if inspect.isfunction(call) else None


def function_id(func: Callable[..., Any]) -> str:
    """The function's folder in the cache: ``<module>/<qualified name>``, both made path-safe.

    Lambdas get their line number (``lambda-L12``) so two lambdas of one module keep apart.

    Examples
    --------
    >>> import os.path
    >>> function_id(os.path.join)
    'posixpath/join'
    """
    target = unwrap_callable(func)
    module = getattr(target, "__module__", None) or getattr(type(target), "__module__", None) or "unknown"
    if module == "__main__":
        module = _main_module_name(target)
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if qualname is None:
        qualname = type(target).__qualname__
    name = _safe_component(qualname)
    code = getattr(target, "__code__", None)
    if getattr(target, "__name__", None) == "<lambda>" and code is not None:
        name = f"{name}-L{code.co_firstlineno}"
    return f"{_safe_component(module)}/{name}"


def display_name(func: Callable[..., Any]) -> str:
    """The function's name as joblib prints it in messages."""
    target = unwrap_callable(func)
    return str(getattr(target, "__name__", type(target).__name__))


@dataclass(frozen=True)
class CodeRecord:
    """Which version of a function wrote a folder's results: its source and their digest."""

    digest: str
    source: str | None
    source_file: str | None
    first_line: int

    def as_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "source": self.source,
            "source_file": self.source_file,
            "first_line": self.first_line,
        }


def code_record(func: Callable[..., Any]) -> CodeRecord:
    """The digest of ``func``'s code, from its source text when Python can find it.

    Like joblib, the source text decides (so moving a function in its file keeps its results
    but editing it, comments included, does not). Without a source (a function typed at the
    interactive prompt, a builtin), the code object itself is hashed with :func:`zoblib.hash`,
    which leaves line numbers out. Lambdas hash both: several may share one source line.
    """
    target = unwrap_callable(func)
    target = _callable_instance_call(target) or target
    code = getattr(target, "__code__", None)
    source_file = code.co_filename if code is not None else None
    try:
        lines, first_line = inspect.getsourcelines(target)
        source: str | None = textwrap.dedent("".join(lines))
    except (OSError, TypeError):
        source, first_line = None, -1
    if code is not None:
        code_digest = zoblib_hash(code)
    else:  # a builtin or an extension's callable: its name is all that can be told (not its
        # repr, which may hold its address and so change in every process)
        name = getattr(target, "__qualname__", None) or getattr(target, "__name__", "")
        code_digest = zoblib_hash((type(target).__qualname__, getattr(target, "__module__", None), name))
    if source is None:
        digest = code_digest
    elif getattr(target, "__name__", None) == "<lambda>":
        digest = xxhash.xxh3_128_hexdigest(source.encode() + code_digest.encode())
    else:
        digest = xxhash.xxh3_128_hexdigest(source.encode())
    return CodeRecord(digest, source, source_file, first_line)


class ArgumentBinder:
    """Turns a call's ``args`` and ``kwargs`` into the name → value mapping that is hashed.

    Defaults are filled in (so ``f(1)`` and ``f(1, y=2)`` hit the same entry when ``y=2`` is
    the default, as in joblib), a bound method's instance counts as its first argument, and
    names in ``ignore`` are left out. Unknown names in ``ignore`` fail at construction.
    """

    def __init__(self, func: Callable[..., Any], ignore: Sequence[str] = ()) -> None:
        if isinstance(ignore, str):
            raise ValueError(f"ignore must be a list of argument names, not the string {ignore!r}")
        self.ignore = tuple(ignore)
        self._instance: tuple[Any, ...] = (func.__self__,) if inspect.ismethod(func) else ()
        # A partial's own arguments, or a callable instance's state, are not in the signature
        # but change the results.
        self._hidden: dict[str, Any] = {}
        if isinstance(func, functools.partial):
            self._hidden["<partial>"] = (func.args, func.keywords)
        elif _callable_instance_call(func) is not None:
            self._hidden["<instance>"] = func
        target = func.__func__ if inspect.ismethod(func) else func
        try:
            self.signature: inspect.Signature | None = inspect.signature(target)
        except (TypeError, ValueError):
            self.signature = None
        if self.signature is None:
            if self.ignore:
                raise ValueError(f"cannot inspect {func!r}: its arguments cannot be ignored")
            return
        names = set(self.signature.parameters)
        unknown = [name for name in self.ignore if name not in names]
        if unknown:
            raise ValueError(
                f"ignore lists {unknown} which are not arguments of {display_name(func)}{self.signature}"
            )

    def arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, defaults included and ignored names left out.

        Raises
        ------
        TypeError
            If the arguments do not match the signature (as calling the function would).
        """
        if self.signature is None:
            return {"*": tuple(args), "**": dict(kwargs), **self._hidden}
        bound = self.signature.bind(*self._instance, *args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        for name in self.ignore:
            arguments.pop(name, None)
        arguments.update(self._hidden)
        return dict(arguments)


def args_id(code_digest: str, arguments: Mapping[str, Any]) -> str:
    """The entry's name: the hash of the code digest and the arguments."""
    return zoblib_hash((code_digest, arguments))


def input_summary(arguments: Mapping[str, Any]) -> dict[str, str]:
    """Short ``repr`` of each argument, for an entry's metadata (joblib's ``input_args``)."""
    summary = {}
    for name, value in arguments.items():
        try:
            text = repr(value)
        except Exception as exc:  # a broken __repr__ must not lose the result
            text = f"<unrepresentable {type(value).__qualname__}: {exc!r}>"
        if len(text) > INPUT_REPR_LIMIT:
            text = text[: INPUT_REPR_LIMIT - 3] + "..."
        summary[name] = text
    return summary
