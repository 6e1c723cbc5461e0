"""The policy of safe loading: which globals a skeleton may name, resolved without surprises.

:class:`Policy` answers two questions about a ``(module, qualname)`` pair that a pickle names:
is it allowed (the allowlist of :mod:`zoblib.safety.allowlist`, plus what the caller trusts),
and which object is it. Resolving imports only the modules of the allowlist or of the trusted
names, looks names up in the module's own namespace (no module ``__getattr__``, which in numpy
and scipy imports submodules lazily) and walks dotted names class by class only, so a name
such as ``collections._sys.modules`` never reaches another module.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zoblib.safety.allowlist import (
    CLASS_ATTRIBUTES,
    EXACT,
    RULES,
    Allowed,
    ClassRule,
    CythonUnpickleRule,
    FunctionRule,
    Rule,
    UfuncRule,
)

_GETATTR = ("builtins", "getattr")

#: What ``trusted=`` takes: ``"module.QualName"`` strings, or the objects themselves.
Trusted = Iterable[Any]


class Refused(Exception):
    """A global outside the allowlist (internal: the loaders turn it into zoblib's error)."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self.why = why
        super().__init__(f"{name}: {why}")


@dataclass(frozen=True)
class Resolved:
    """An allowed global: the object and whether the skeleton may call it."""

    value: Any
    callable: bool
    takes_array_classes: bool = False
    #: ``"module.QualName"`` as the pickle named it.
    name: str = ""
    #: ``builtins.getattr``, allowed only for :data:`~zoblib.safety.allowlist.CLASS_ATTRIBUTES`.
    attribute_getter: bool = False


def global_name(value: Any) -> str:
    """``"module.QualName"`` of a class or function, as a pickle names it.

    Examples
    --------
    >>> import collections
    >>> global_name(collections.OrderedDict)
    'collections.OrderedDict'
    """
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(f"trusted= takes 'module.QualName' strings or classes and functions, got {value!r}")
    return f"{module}.{qualname}"


class Policy:
    """The allowlist plus ``trusted``: decides and resolves the globals of a skeleton.

    Parameters
    ----------
    trusted
        Extra globals to allow: ``"module.QualName"`` strings, or the classes and functions
        themselves (then the name must resolve to that very object).

    Examples
    --------
    >>> from zoblib.safety import Policy
    >>> policy = Policy()
    >>> policy.allows("collections", "OrderedDict"), policy.allows("os", "system")
    (True, False)
    >>> Policy(trusted=["os.system"]).allows("os", "system")
    True
    """

    def __init__(self, trusted: Trusted = ()) -> None:
        names: set[str] = set()
        objects: dict[str, Any] = {}
        for entry in trusted:
            if isinstance(entry, str):
                names.add(entry)
            else:
                objects[global_name(entry)] = entry
        self.trusted_names = frozenset(names | set(objects))
        self._trusted_objects = objects
        self._cache: dict[tuple[str, str], Resolved] = {}

    def is_trusted(self, module: str, qualname: str) -> bool:
        """Whether the caller trusted this name (by string or by object)."""
        return f"{module}.{qualname}" in self.trusted_names

    def allows_without_import(self, module: str, qualname: str) -> bool:
        """Whether the name is an exact allowlist entry or trusted (decided by name alone)."""
        return (module, qualname) in EXACT or self.is_trusted(module, qualname)

    def allows(self, module: str, qualname: str) -> bool:
        """Whether the global is allowed (may import the allowlist's own modules to check).

        ``builtins.getattr`` by itself is not; ``module.Class.attribute`` is when the scan
        found ``getattr(Class, 'attribute')`` of :data:`CLASS_ATTRIBUTES` (called at once).
        """
        if (module, qualname) == _GETATTR:
            return self.is_trusted(module, qualname)
        if (module, qualname) in CLASS_ATTRIBUTES:
            return self.allows(module, qualname.rpartition(".")[0])
        try:
            self.resolve(module, qualname)
        except Refused:
            return False
        return True

    def resolve(self, module: str, qualname: str) -> Resolved:
        """The allowed object named ``module.qualname``; :class:`Refused` if it is not allowed."""
        key = (module, qualname)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        resolved = self._resolve(module, qualname)
        self._cache[key] = resolved
        return resolved

    def allows_class_attribute(self, owner: Resolved, attribute: Any) -> bool:
        """Whether ``getattr(owner.value, attribute)`` is one of :data:`CLASS_ATTRIBUTES`."""
        if not isinstance(attribute, str) or not isinstance(owner.value, type):
            return False
        module, qualname = owner.value.__module__, owner.value.__qualname__
        dotted = f"{qualname}.{attribute}"
        listed = (module, dotted) in CLASS_ATTRIBUTES or self.is_trusted(module, dotted)
        return owner.name == f"{module}.{qualname}" and listed

    def _resolve(self, module: str, qualname: str) -> Resolved:
        name = f"{module}.{qualname}"
        if (module, qualname) == _GETATTR and not self.is_trusted(module, qualname):
            return Resolved(getattr, callable=True, name=name, attribute_getter=True)
        if self.is_trusted(module, qualname):
            value = _lookup(_import(module, name), qualname, name, through_classes_only=False)
            expected = self._trusted_objects.get(name)
            if expected is not None and value is not expected:
                raise Refused(name, "does not resolve to the object given in trusted=")
            return Resolved(value, callable=True, name=name)
        entry: Allowed | None = EXACT.get((module, qualname))
        if entry is not None:
            value = _lookup(_import(module, name), qualname, name, module_getattr=True)
            return Resolved(value, entry.callable, entry.takes_array_classes, name)
        covering = [rule for rule in RULES if rule.covers(module, qualname)]
        if not covering:
            raise Refused(name, "is not in the allowlist")
        value = _lookup(_import(module, name), qualname, name)
        if any(_admits(rule, value, module, qualname) for rule in covering):
            return Resolved(value, callable=True, name=name)
        raise Refused(name, "is not what the allowlist admits under that name")


def _import(module: str, name: str) -> types.ModuleType:
    # Only modules named by the allowlist or by ``trusted=`` ever get here.
    try:
        return sys.modules[module] if module in sys.modules else importlib.import_module(module)
    except ImportError as exc:
        raise Refused(name, f"its module cannot be imported ({exc})") from exc


def _lookup(
    owner: Any, qualname: str, name: str, *, through_classes_only: bool = True, module_getattr: bool = False
) -> Any:
    value = owner
    for depth, part in enumerate(qualname.split(".")):
        if depth and through_classes_only and not isinstance(value, type):
            raise Refused(name, "is reached through something that is not a class")
        namespace = vars(value) if isinstance(value, (types.ModuleType, type)) else {}
        if part in namespace:
            value = namespace[part]
        elif module_getattr and depth == 0 and hasattr(value, "__getattr__"):
            # An exact entry of a compatibility module (numpy 2's numpy.core shims name numpy
            # 1's functions through a module __getattr__): reviewed names only.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                value = getattr(value, part, None)
            if value is None:
                raise Refused(name, "does not exist")
        elif not through_classes_only:
            # A trusted name: the caller vouched for it, look it up as pickle would.
            try:
                value = getattr(value, part)
            except AttributeError as exc:
                raise Refused(name, "does not exist") from exc
        else:
            raise Refused(name, "does not exist")
        if isinstance(value, types.ModuleType) and through_classes_only:
            raise Refused(name, "is a module")
    return value


def _admits(rule: Rule, value: Any, module: str, qualname: str) -> bool:
    if isinstance(rule, ClassRule):
        if not isinstance(value, type) or value.__module__ != module or value.__qualname__ != qualname:
            return False
        if not _defined_where_it_says(value, rule):
            return False
        if rule.base is None:
            return True
        base_module, base_name = rule.base.split(":")
        base = sys.modules.get(base_module)
        return base is not None and issubclass(value, getattr(base, base_name))
    if isinstance(rule, CythonUnpickleRule):
        return (
            type(value).__name__ in ("cython_function_or_method", "builtin_function_or_method")
            and getattr(value, "__name__", None) == qualname
            and getattr(value, "__module__", None) == module
        )
    if isinstance(rule, FunctionRule):
        return (
            isinstance(value, types.FunctionType)
            and value.__module__ == module
            and value.__qualname__ == qualname
        )
    if isinstance(rule, UfuncRule):
        import numpy as np

        return isinstance(value, np.ufunc)
    return False


#: The methods an unpickler calls on a class or its instances (construction, BUILD, items).
_RUN_BY_LOADING = ("__new__", "__init__", "__setstate__", "__setitem__", "append", "extend", "add")


def _defined_where_it_says(cls: type, rule: ClassRule) -> bool:
    """Whether the methods of ``cls`` that loading can run come from modules the rule covers.

    Some packages set ``__module__`` of their public classes to the package itself (pandas'
    ``HDFStore``, whose ``__init__`` lives in ``pandas.io.pytables`` and opens files): the
    methods' modules tell where the class really lives.
    """
    for method in _RUN_BY_LOADING:
        member = vars(cls).get(method)
        function = getattr(member, "__func__", member)
        origin = getattr(function, "__module__", None) if isinstance(function, types.FunctionType) else None
        if origin is not None and origin != cls.__module__ and not rule.covers(origin, "_"):
            return False
    return True
