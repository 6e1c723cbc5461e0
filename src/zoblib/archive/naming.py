"""Where an array sits in an object: the readable names of an archive's nodes.

``array_locations(value)`` walks the object graph as pickle will (dict keys, list and tuple
indices, instance attributes, ``__getstate__`` results) and records, for every numpy array it
meets, the path of keys that reached it first: ``("layers", 0, "W")``, ``("estimators_", 3,
"tree_", "value")``. ``node_names`` turns those paths into unique, store-safe node names
(``layers/0/W``). A pure function of the object; it reads no array data.

Arrays are matched by their memory (data pointer, shape, strides, dtype), not only by identity:
objects such as scikit-learn's ``Tree`` build new views of their buffers each time they are
pickled, and the walk's view and the pickler's are different objects over the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

Component = str | int
Path = tuple[Component, ...]
MemoryKey = tuple[int, tuple[int, ...], tuple[int, ...], str]

#: How deep the walk goes, and how many objects it visits at most (it only names things).
MAX_DEPTH = 32
MAX_VISITS = 200_000
_MAX_COMPONENT_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
#: Names with a meaning of their own in a Zarr store or beside our nodes.
_RESERVED = {"zarr.json", "c", ".", ".."}


def memory_key(array: np.ndarray[Any, Any]) -> MemoryKey:
    """What identifies an array's values in memory, for views made afresh of the same buffer."""
    # ``ctypes.data`` reads the pointer as it is; ``__array_interface__`` would also build the
    # dtype's descr, 20 us for a struct (the nodes of each of a forest's trees).
    pointer = int(array.ctypes.data)
    return pointer, tuple(array.shape), tuple(array.strides), array.dtype.str


class ArrayLocations:
    """The first path reaching each array of an object: by identity, else by memory.

    Most arrays the pickler meets are the very objects the walk met; the memory keys (a few
    microseconds an array) are only computed when one is not, for views made afresh.
    """

    def __init__(self, found: dict[int, tuple[np.ndarray[Any, Any], Path]]) -> None:
        # The arrays are kept alive so that their ids are not reused while this is in use.
        self._by_id = found
        self._by_memory: dict[MemoryKey, Path] | None = None

    def __len__(self) -> int:
        return len(self._by_id)

    def path_of(self, array: np.ndarray[Any, Any]) -> Path | None:
        """The first path that reaches ``array`` (or a view of the same memory), if any."""
        entry = self._by_id.get(id(array))
        if entry is not None and entry[0] is array:
            return entry[1]
        if self._by_memory is None:
            self._by_memory = {}
            for seen, path in self._by_id.values():
                self._by_memory.setdefault(memory_key(seen), path)
        return self._by_memory.get(memory_key(array))


def array_locations(value: Any) -> ArrayLocations:
    """For every numpy array reachable in ``value``, the first path that reaches it."""
    found: dict[int, tuple[np.ndarray[Any, Any], Path]] = {}
    seen: set[int] = set()
    stack: list[tuple[Any, Path]] = [(value, ())]
    visits = 0
    while stack and visits < MAX_VISITS:
        item, path = stack.pop()
        visits += 1
        if isinstance(item, np.ndarray):
            if item.size and not item.dtype.hasobject and id(item) not in found:
                found[id(item)] = (item, path)
            continue
        if id(item) in seen or len(path) >= MAX_DEPTH or _is_atom(item):
            continue
        seen.add(id(item))
        children = list(_children(item))
        # Reversed onto the stack, so that the first child is walked first (pickle's order).
        stack.extend((child, (*path, key)) for key, child in reversed(children))
    return ArrayLocations(found)


def _is_atom(item: Any) -> bool:
    return item is None or isinstance(item, (str, bytes, bytearray, int, float, complex, type))


def _children(item: Any) -> Iterable[tuple[Component, Any]]:
    if isinstance(item, Mapping):
        try:
            return [(_component(k), v) for k, v in item.items()]
        except Exception:  # a mapping that cannot be iterated safely: no names below it
            return []
    if isinstance(item, (list, tuple)):
        return list(enumerate(item))
    if isinstance(item, np.ma.MaskedArray):
        return [("data", np.asarray(item.data)), ("mask", np.ma.getmaskarray(item))]
    state = _state(item)
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        state = {**(state[0] or {}), **state[1]}  # (dict, slots) as object.__getstate__ gives
    if isinstance(state, Mapping):
        return [(_component(k), v) for k, v in state.items()]
    if isinstance(state, (list, tuple)):
        return list(enumerate(state))
    return []


def _state(item: Any) -> Any:
    getstate = getattr(type(item), "__getstate__", None)
    try:
        if getstate is not None and getstate is not object.__getstate__:
            return item.__getstate__()
        return vars(item)
    except Exception:  # no state we can see without pickling: the arrays get numbers
        return None


def _component(key: Any) -> Component:
    return key if isinstance(key, (str, int)) and not isinstance(key, bool) else repr(key)


def safe_component(component: Component) -> str:
    """One path component as a store key segment: ``[A-Za-z0-9_.-]``, never a reserved name."""
    if type(component) is int and component >= 0:  # a list index: digits, never reserved
        return str(component)
    text = _UNSAFE.sub("_", str(component))[:_MAX_COMPONENT_CHARS] or "_"
    return f"_{text}" if text in _RESERVED or text.startswith("__zoblib") else text


def node_names(paths: Iterable[Path | None]) -> list[str | None]:
    """Unique, prefix-free names for ``paths`` in order (``None`` stays ``None``: no path known).

    A name never equals another nor lies under another (an array node cannot hold children);
    a collision (from sanitising, or an array where another's path has a group) renames the
    colliding component with a ``~2``, ``~3`` suffix (``~`` appears in no sanitised name).

    >>> node_names([("a b",), ("a_b",), ("a",), ("a", "W"), None, ("c",)])
    ['a_b', 'a_b~2', 'a', 'a~2/W', None, '_c']
    """
    taken: set[str] = set()
    prefixes: set[str] = set()
    names: list[str | None] = []
    for path in paths:
        if not path:
            names.append(None)
            continue
        name = _unique([safe_component(c) for c in path], taken, prefixes)
        taken.add(name)
        pieces = name.split("/")
        prefixes.update("/".join(pieces[:i]) for i in range(1, len(pieces)))
        names.append(name)
    return names


def _unique(parts: list[str], taken: set[str], prefixes: set[str]) -> str:
    while True:
        clash = next((i for i in range(1, len(parts)) if "/".join(parts[:i]) in taken), None)
        if clash is not None:  # an array already sits where this path needs a group
            parts[clash - 1] = _bump(parts[clash - 1])
            continue
        name = "/".join(parts)
        if name in taken or name in prefixes:
            parts[-1] = _bump(parts[-1])
            continue
        return name


def _bump(component: str) -> str:
    stem, _, number = component.rpartition("~")
    if stem and number.isdigit():
        return f"{stem}~{int(number) + 1}"
    return f"{component}~2"
