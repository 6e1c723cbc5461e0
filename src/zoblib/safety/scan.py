"""The static scan of a pickle: every global it names and calls, found without executing anything.

A walk over ``pickletools.genops`` that keeps a symbolic stack and memo, so that the module
and name ``STACK_GLOBAL`` pops are known when they were pushed as literal strings (directly or
through the memo). Anything the walk cannot name is reported as a pseudo-global in angle
brackets, which no allowlist admits: a ``STACK_GLOBAL`` whose operands were computed by the
pickle itself (a ``str(b'os', 'ascii')`` call), an ``EXT1/2/4`` code that copyreg's extension
registry does not map to a name. ``getattr(<global>, '<literal>')`` called at once (how pickle
names a class method) is reported as the dotted name ``module.Class.attribute``; any other use
of ``builtins.getattr`` reports it. A malformed pickle raises ``ValueError``.

The same walk counts the calls (``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``INST``, ``OBJ``) whose
callable is a global the pickle named (``zoblib inspect`` counts the arrays a skeleton rebuilds
from bytes of its own so), and where the pickle ends (``zoblib convert`` tells a plain pickle
file from a joblib file, whose arrays' bytes follow its pickle's opcodes, so).
"""

from __future__ import annotations

import _compat_pickle
import copyreg
import pickletools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_STRING_OPCODES = frozenset(
    {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
)
_EXT_OPCODES = frozenset({"EXT1", "EXT2", "EXT4"})


class _Mark:
    """The MARK object on the symbolic stack."""


@dataclass(frozen=True)
class _Literal:
    """A string the pickle pushed as a literal."""

    value: str


@dataclass(frozen=True)
class _Global:
    """A global the pickle pushed."""

    module: str
    qualname: str


@dataclass(frozen=True)
class _Tuple:
    """A tuple the pickle built from known items."""

    items: tuple[Any, ...]


_GETATTR = _Global("builtins", "getattr")
_TUPLE_SIZES = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_MARK = _Mark()
_OPAQUE = object()  # any other value: its content is unknown without executing


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan_globals` found in a pickle.

    Attributes
    ----------
    named : tuple of (str, str)
        Every global the pickle names, ``(module, qualname)``, in order of first appearance.
    unnamed : tuple of str
        Pseudo-globals (``"<...>"``) for the globals that cannot be named without executing.
    calls : Mapping
        ``(module, qualname)`` -> how many times the pickle calls that global (``REDUCE``,
        ``NEWOBJ``, ``NEWOBJ_EX``, ``INST``, ``OBJ``); the keys are among ``named``.
    end : int
        The offset just past the pickle's ``STOP`` opcode (bytes may follow it).
    """

    named: tuple[tuple[str, str], ...]
    unnamed: tuple[str, ...]
    calls: Mapping[tuple[str, str], int]
    end: int


def scan_globals(data: bytes) -> ScanResult:
    """Every global the first pickle of ``data`` names and calls, without executing it.

    Parameters
    ----------
    data
        Bytes that start with a pickle; whatever follows its ``STOP`` opcode is not read.

    Returns
    -------
    ScanResult
        The globals named (in order of first appearance), the pseudo-globals of what cannot be
        named, how often each global is called, and where the pickle ends.

    Raises
    ------
    ValueError
        If ``data`` does not start with a well-formed pickle.

    Examples
    --------
    >>> import pickle, collections
    >>> from zoblib.safety.scan import scan_globals
    >>> scan = scan_globals(pickle.dumps(collections.OrderedDict()))
    >>> scan.named, scan.calls
    ((('collections', 'OrderedDict'),), {('collections', 'OrderedDict'): 1})
    """
    named: dict[tuple[str, str], None] = {}
    unnamed: dict[str, None] = {}
    calls: dict[tuple[str, str], int] = {}
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    protocol = 0
    end = 0

    def take() -> Any:
        if not stack:
            raise ValueError("the pickle pops from an empty stack")
        return stack.pop()

    def consumed(item: Any) -> None:
        # getattr used any other way than getattr(AllowedClass, 'literal') called at once.
        if item == _GETATTR:
            named[("builtins", "getattr")] = None
        elif isinstance(item, _Tuple):
            for inner in item.items:
                consumed(inner)

    def pop() -> Any:
        item = take()
        consumed(item)
        return item

    def pop_to_mark() -> list[Any]:
        items: list[Any] = []
        while (item := pop()) is not _MARK:
            items.append(item)
        return items[::-1]

    def take_to_mark() -> list[Any]:
        items: list[Any] = []
        while (item := take()) is not _MARK:
            items.append(item)
        return items[::-1]

    def name(module: str, qualname: str) -> _Global:
        if protocol < 3:  # what the unpickler maps Python 2 names to (fix_imports)
            if (module, qualname) in _compat_pickle.NAME_MAPPING:
                module, qualname = _compat_pickle.NAME_MAPPING[(module, qualname)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, qualname) != ("builtins", "getattr"):  # recorded when consumed
            named[(module, qualname)] = None
        return _Global(module, qualname)

    def called(function: Any) -> None:
        if isinstance(function, _Global):
            key = (function.module, function.qualname)
            calls[key] = calls.get(key, 0) + 1

    for opcode, argument, position in pickletools.genops(data):
        kind = opcode.name
        end = int(position or 0) + 1  # the last opcode genops yields is STOP, one byte long
        if kind == "PROTO":
            protocol = int(argument or 0)
        elif kind in _STRING_OPCODES:
            stack.append(_Literal(argument) if isinstance(argument, str) else _OPAQUE)
        elif kind == "MARK":
            stack.append(_MARK)
        elif kind == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else _OPAQUE
        elif kind in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(argument or 0)] = stack[-1] if stack else _OPAQUE
        elif kind in ("GET", "BINGET", "LONG_BINGET"):
            if int(argument or 0) not in memo:
                raise ValueError(f"the pickle reads memo entry {argument}, which it never stored")
            stack.append(memo[int(argument or 0)])
        elif kind == "DUP":
            stack.append(stack[-1] if stack else _OPAQUE)
        elif kind == "GLOBAL":
            module, _, qualname = str(argument).partition(" ")
            stack.append(name(module, qualname))
        elif kind == "INST":
            module, _, qualname = str(argument).partition(" ")
            instantiated = name(module, qualname)
            consumed(instantiated)
            called(instantiated)
            pop_to_mark()
            stack.append(_OPAQUE)
        elif kind == "OBJ":
            items = pop_to_mark()  # the class, then its arguments
            if not items:
                raise ValueError(f"the pickle's OBJ at byte {position} has no class to call")
            called(items[0])
            stack.append(_OPAQUE)
        elif kind == "STACK_GLOBAL":
            qualname_item, module_item = pop(), pop()
            if isinstance(module_item, _Literal) and isinstance(qualname_item, _Literal):
                stack.append(name(module_item.value, qualname_item.value))
            else:
                unnamed[f"<STACK_GLOBAL of computed names at byte {position}>"] = None
                stack.append(_OPAQUE)
        elif kind in _TUPLE_SIZES:
            items = [take() for _ in range(_TUPLE_SIZES[kind])][::-1]
            stack.append(_Tuple(tuple(items)))
        elif kind == "TUPLE":
            stack.append(_Tuple(tuple(take_to_mark())))
        elif kind == "REDUCE":
            arguments, function = take(), take()
            if function == _GETATTR and _is_class_attribute(arguments):
                owner, attribute = arguments.items
                named[(owner.module, f"{owner.qualname}.{attribute.value}")] = None
            else:
                consumed(function)
                consumed(arguments)
                called(function)
            stack.append(_OPAQUE)
        elif kind in ("NEWOBJ", "NEWOBJ_EX"):
            if kind == "NEWOBJ_EX":
                pop()  # the keyword arguments
            pop()  # the arguments
            called(pop())
            stack.append(_OPAQUE)
        elif kind in _EXT_OPCODES:
            registered = copyreg._inverted_registry.get(int(argument or 0))  # type: ignore[attr-defined, unused-ignore]
            if registered is None:
                unnamed[f"<{kind} code {argument}, not in copyreg's extension registry>"] = None
                stack.append(_OPAQUE)
            else:  # the global itself, as GLOBAL pushes it (a getattr among them is seen when used)
                stack.append(name(*registered))
        else:
            _generic_effect(opcode, stack, pop, pop_to_mark)
    return ScanResult(tuple(named), tuple(unnamed), calls, end)


def _is_class_attribute(arguments: Any) -> bool:
    return (
        isinstance(arguments, _Tuple)
        and len(arguments.items) == 2
        and isinstance(arguments.items[0], _Global)
        and arguments.items[0] != _GETATTR
        and isinstance(arguments.items[1], _Literal)
    )


def _generic_effect(opcode: Any, stack: list[Any], pop: Any, pop_to_mark: Any) -> None:
    # pickletools describes each opcode's stack effect; ``stackslice`` is the items above a
    # MARK, popped with it.
    before = opcode.stack_before
    for item in reversed(before):
        if item is pickletools.stackslice:
            continue
        if item is pickletools.markobject:
            pop_to_mark()
        else:
            pop()
    for item in opcode.stack_after:
        stack.append(_MARK if item is pickletools.markobject else _OPAQUE)
