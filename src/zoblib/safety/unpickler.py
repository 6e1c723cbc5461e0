"""The guarded unpickler: pickle's pure-Python unpickler, refusing what the policy does not allow.

Every global goes through :meth:`GuardedUnpickler.find_class` and the :class:`Policy`. Beyond
names, the opcodes that call or change objects are checked as they run:

* ``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``INST`` and ``OBJ`` call only allowed globals the policy marks
  callable (never an object built on the way, such as a callable instance), and every callable
  among their arguments must itself be an allowed global (``copyreg._reconstructor``,
  numpy's ``__generator_ctor`` and Cython's ``newObj`` call what they are given).
* ``BUILD``, ``APPEND(S)``, ``SETITEM(S)`` and ``ADDITEMS`` never touch a class, function,
  module or any allowed global itself (``BUILD`` could otherwise set ``__code__``,
  ``__defaults__`` or ``__reduce__`` on them for the whole process); on an object whose class
  has no ``__setstate__``, ``BUILD`` never sets a dunder attribute (``__class__``,
  ``__setstate__``), and never calls a ``__setstate__`` the instance itself holds.

To compose with another ``pickle._Unpickler`` subclass (a reader of joblib's files), each
overridden opcode maps, in the copied ``dispatch`` table, to a function calling the method by
name, and every method calls ``super()`` for what it does not refuse; a subclass that resolves
a global itself hands it to :meth:`GuardedUnpickler.mark_resolved`.
"""

from __future__ import annotations

import _compat_pickle
import pickle
import types
from collections.abc import Callable
from typing import IO, Any, ClassVar

from zoblib.safety.policy import Policy, Refused, Resolved

#: Objects that ``BUILD`` and the item opcodes never modify.
_IMMUTABLE_KINDS = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    types.CodeType,
    staticmethod,
    classmethod,
    property,
)


class UnsafeOperation(pickle.UnpicklingError):
    """An opcode the guarded unpickler refuses (internal: the loaders turn it into zoblib's error)."""


def _by_name(method: str) -> Callable[[Any], None]:
    def run(self: Any) -> None:
        getattr(self, method)()

    run.__name__ = f"dispatch_{method}"
    return run


class GuardedUnpickler(pickle._Unpickler):
    """A ``pickle._Unpickler`` that resolves globals through ``policy`` and checks calls.

    Parameters
    ----------
    file
        The pickle's bytes, as a binary file.
    policy
        Which globals are allowed (:class:`~zoblib.safety.Policy`).
    **kwargs
        Passed to ``pickle._Unpickler`` (``fix_imports``, ``encoding``, ``errors``).

    Examples
    --------
    >>> import io, pickle, collections
    >>> from zoblib.safety import GuardedUnpickler, Policy
    >>> data = pickle.dumps(collections.OrderedDict(a=1))
    >>> GuardedUnpickler(io.BytesIO(data), policy=Policy()).load()["a"]
    1
    >>> GuardedUnpickler(io.BytesIO(pickle.dumps(print)), policy=Policy()).load()
    Traceback (most recent call last):
    ...
    zoblib.safety.unpickler.UnsafeOperation: refused global builtins.print: is not in the allowlist
    """

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.REDUCE[0]] = _by_name("load_reduce")
    dispatch[pickle.NEWOBJ[0]] = _by_name("load_newobj")
    dispatch[pickle.NEWOBJ_EX[0]] = _by_name("load_newobj_ex")
    dispatch[pickle.BUILD[0]] = _by_name("load_build")
    dispatch[pickle.APPEND[0]] = _by_name("load_append")
    dispatch[pickle.APPENDS[0]] = _by_name("load_appends")
    dispatch[pickle.SETITEM[0]] = _by_name("load_setitem")
    dispatch[pickle.SETITEMS[0]] = _by_name("load_setitems")
    dispatch[pickle.ADDITEMS[0]] = _by_name("load_additems")

    # pickle._Unpickler's own state, set as it loads.
    stack: list[Any]
    metastack: list[list[Any]]
    proto: int
    fix_imports: bool

    def __init__(self, file: IO[bytes], *, policy: Policy, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.policy = policy
        # id -> the allowed global (kept, so that its id is never reused by another object).
        self._resolved: dict[int, Resolved] = {}

    # ---- globals ----------------------------------------------------------------------------

    def find_class(self, module: str, name: str) -> Any:
        checked_module, checked_name = module, name
        if self.proto < 3 and self.fix_imports:  # what pickle itself maps Python 2 names to
            if (module, name) in _compat_pickle.NAME_MAPPING:
                checked_module, checked_name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                checked_module = _compat_pickle.IMPORT_MAPPING[module]
        try:
            allowed = self.policy.resolve(checked_module, checked_name)
        except Refused as exc:
            raise UnsafeOperation(f"refused global {exc.name}: {exc.why}") from None
        value = super().find_class(module, name)
        if value is not allowed.value:
            raise UnsafeOperation(f"global {checked_module}.{checked_name} resolved to another object")
        self.mark_resolved(allowed)
        return value

    def mark_resolved(self, allowed: Resolved) -> None:
        """Record an allowed global (for subclasses that resolve some globals themselves)."""
        self._resolved[id(allowed.value)] = allowed

    def _allowed(self, value: Any) -> Resolved | None:
        entry = self._resolved.get(id(value))
        return entry if entry is not None and entry.value is value else None

    def _check_call(self, func: Any, args: Any, opcode: str) -> None:
        entry = self._allowed(func)
        if entry is None:
            raise UnsafeOperation(f"{opcode} calls {_describe(func)}, which is not an allowed global")
        if not entry.callable:
            raise UnsafeOperation(f"{opcode} calls {_describe(func)}, which the allowlist never calls")
        if entry.attribute_getter:
            owner = self._allowed(args[0]) if isinstance(args, tuple) and len(args) == 2 else None
            if opcode != "REDUCE" or owner is None or not self.policy.allows_class_attribute(owner, args[1]):
                raise UnsafeOperation(
                    f"{opcode} calls builtins.getattr, allowed only for a few class methods"
                )
        items = args.values() if isinstance(args, dict) else args if isinstance(args, (tuple, list)) else ()
        for item in items:
            if not callable(item):
                continue
            argument = self._allowed(item)
            if argument is None:
                raise UnsafeOperation(
                    f"{opcode} passes {_describe(item)}, a callable that is not an allowed global"
                )
            if argument.attribute_getter:
                raise UnsafeOperation(f"{opcode} passes builtins.getattr to {_describe(func)}")
            if not argument.callable and not entry.takes_array_classes:
                raise UnsafeOperation(f"{opcode} passes {_describe(item)} to {_describe(func)}")

    def _check_target(self, target: Any, opcode: str) -> None:
        if isinstance(target, _IMMUTABLE_KINDS) or self._allowed(target) is not None:
            raise UnsafeOperation(f"{opcode} would modify {_describe(target)}")

    # ---- opcodes that call ------------------------------------------------------------------

    def load_reduce(self) -> None:
        func, args = self.stack[-2], self.stack[-1]
        self._check_call(func, args, "REDUCE")
        super().load_reduce()  # type: ignore[misc]
        entry = self._allowed(func)
        if entry is not None and entry.attribute_getter:
            # getattr(AllowedClass, 'method') of CLASS_ATTRIBUTES: the bound method may be called.
            owner = self._allowed(args[0])
            name = f"{owner.name if owner else '?'}.{args[1]}"
            self.mark_resolved(Resolved(self.stack[-1], callable=True, name=name))

    def load_newobj(self) -> None:
        self._check_call(self.stack[-2], self.stack[-1], "NEWOBJ")
        super().load_newobj()  # type: ignore[misc]

    def load_newobj_ex(self) -> None:
        self._check_call(self.stack[-3], self.stack[-2], "NEWOBJ_EX")
        self._check_call(self.stack[-3], self.stack[-1], "NEWOBJ_EX")
        super().load_newobj_ex()  # type: ignore[misc]

    def _instantiate(self, klass: Any, args: Any) -> None:
        # INST (its class named inline, through find_class) and OBJ both call the class here.
        self._check_call(klass, args, "INST/OBJ")
        super()._instantiate(klass, args)  # type: ignore[misc]

    # ---- opcodes that modify ----------------------------------------------------------------

    def load_build(self) -> None:
        state, target = self.stack[-1], self.stack[-2]
        self._check_target(target, "BUILD")
        if getattr(type(target), "__setstate__", None) is None:
            # pickle calls ``target.__setstate__`` when there is one: one set on the instance
            # (by an earlier BUILD, or served by a __getattr__) would be the file's choice.
            if getattr(target, "__setstate__", None) is not None:
                raise UnsafeOperation(f"BUILD on {_describe(target)} with a __setstate__ of its own")
            parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
            for part in parts:
                dunders = [k for k in part if _is_dunder(k)] if isinstance(part, dict) else []
                if dunders:
                    raise UnsafeOperation(f"BUILD would set {dunders[0]} on {_describe(target)}")
        super().load_build()  # type: ignore[misc]

    def load_append(self) -> None:
        self._check_target(self.stack[-2], "APPEND")
        super().load_append()  # type: ignore[misc]

    def _object_below_mark(self) -> Any:
        # APPENDS, SETITEMS and ADDITEMS change the object under their MARK, which pickle has
        # moved to the metastack (None when there is none: pickle then fails on its own).
        return self.metastack[-1][-1] if self.metastack and self.metastack[-1] else None

    def load_appends(self) -> None:
        self._check_target(self._object_below_mark(), "APPENDS")
        super().load_appends()  # type: ignore[misc]

    def load_setitem(self) -> None:
        self._check_target(self.stack[-3], "SETITEM")
        super().load_setitem()  # type: ignore[misc]

    def load_setitems(self) -> None:
        self._check_target(self._object_below_mark(), "SETITEMS")
        super().load_setitems()  # type: ignore[misc]

    def load_additems(self) -> None:
        self._check_target(self._object_below_mark(), "ADDITEMS")
        super().load_additems()  # type: ignore[misc]


def _is_dunder(key: Any) -> bool:
    return isinstance(key, str) and key.startswith("__") and key.endswith("__")


def _describe(value: Any) -> str:
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return f"{getattr(value, '__module__', None)}.{getattr(value, '__qualname__', value)}"
    kind = type(value)
    return f"a {kind.__module__}.{kind.__qualname__} object"
