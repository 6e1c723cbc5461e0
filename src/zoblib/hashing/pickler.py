"""A pickler that streams a canonical form of an object into a hash instead of a file.

The C pickler does the walking and the byte encoding. Its ``persistent_id`` hook, called for
every object before anything else, swaps the objects whose plain pickle would be wrong for a
hash for a canonical form, which is then pickled in their place (followed by the BINPERSID
opcode, so no ordinary object pickles to the same bytes):

- dicts and sets: items sorted, by value for keys all of one naturally ordered type (str, int,
  bytes) and by their own digest otherwise, so insertion order and PYTHONHASHSEED do not matter;
- numpy arrays: dtype, shape and :func:`~zoblib.hashing.arrays.array_digest`, computed from the
  array's memory or taken from the ``zoblib_digest`` an archive recorded;
- functions and code objects: by their bytecode, constants, names, defaults and closure, so
  editing a function changes its hash while moving it within its file does not;
- classes and modules: by qualified name, so local classes hash too.

The pickler runs in "fast" mode, without a memo: two equal objects hash alike whether or not
they are the same object (``['ab', 'ab']`` built from literals or at run time). Fast mode cannot
follow cycles, so ``zoblib.hash`` falls back to ``track_identity=True`` for self-referencing
objects, where shared objects are written as back-references.
"""

from __future__ import annotations

import pickle
import sys
import types
from collections import OrderedDict
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from zoblib.errors import HashingError
from zoblib.hashing.algorithms import new_hash_object
from zoblib.hashing.arrays import DIGEST_ATTRIBUTE, array_digest, dtype_token, recorded_digest

# Fixed, so the stream (and every hash) does not change with the Python version's default.
_PROTOCOL = 4
# Fed first: changing the canonical forms means bumping it, so old and new hashes never meet.
_HEADER = b"zoblib.hash v1\n"

_PICKLED_AS_IS = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        bytearray,
        list,
        tuple,
        range,
        slice,
        types.EllipsisType,
        types.NotImplementedType,
    }
)
# Types whose values all compare with each other, so sorting them never fails nor depends on
# the order it starts from (floats are left out because of NaN, frozensets because ``<`` is
# only a partial order on them).
_NATURALLY_ORDERED = frozenset({str, int, bytes})

_first = itemgetter(0)


class _Tag:
    """Names of the canonical forms: the first item of every tuple ``persistent_id`` returns."""

    ARRAY = "zoblib.hash:ndarray"
    ARRAY_SUBCLASS = "zoblib.hash:ndarray-subclass"
    BACK_REFERENCE = "zoblib.hash:back-reference"
    CLASS = "zoblib.hash:class"
    CODE = "zoblib.hash:code"
    DICT = "zoblib.hash:dict"
    DICT_SUBCLASS = "zoblib.hash:dict-subclass"
    DTYPE = "zoblib.hash:dtype"
    EMPTY_CELL = "zoblib.hash:empty-cell"
    FROZENSET = "zoblib.hash:frozenset"
    FUNCTION = "zoblib.hash:function"
    MASKED_ARRAY = "zoblib.hash:masked-array"
    METHOD = "zoblib.hash:method"
    MODULE = "zoblib.hash:module"
    OBJECT_ARRAY = "zoblib.hash:object-ndarray"
    SCALAR = "zoblib.hash:numpy-scalar"
    SET = "zoblib.hash:set"
    SET_SUBCLASS = "zoblib.hash:set-subclass"


class _EmptyCell:
    """Stands for a closure cell with no value yet (a nested function not yet defined)."""


_EMPTY_CELL = _EmptyCell()


class _HashWriter:
    """The file the pickler writes to: every write goes to the hash."""

    __slots__ = ("_update",)

    def __init__(self, update: Callable[[bytes], object]) -> None:
        self._update = update

    def write(self, data: bytes) -> None:
        self._update(data)


def canonical_digest(obj: object, hash_name: str, *, track_identity: bool = False) -> str:
    """Hash the canonical pickle of ``obj`` with the algorithm ``hash_name``.

    Parameters
    ----------
    obj : object
        What to hash.
    hash_name : str
        A name from :data:`~zoblib.hashing.algorithms.HASH_ALGORITHMS`.
    track_identity : bool, default False
        Write objects met twice as back-references (needed for cyclic objects) instead of
        writing them again by value.

    Returns
    -------
    str
        The hexadecimal digest.

    Raises
    ------
    HashingError
        If some part of ``obj`` cannot be pickled; the message names its type.
    RecursionError, ValueError
        If ``obj`` refers to itself and ``track_identity`` is False (or it is nested too deeply).
    """
    hasher = new_hash_object(hash_name)
    hasher.update(_HEADER)
    pickler = CanonicalPickler(hasher.update, hash_name, track_identity=track_identity)
    try:
        pickler.dump(obj)
    except HashingError:
        raise
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        culprit = obj if pickler.last_unhandled is None else pickler.last_unhandled
        raise HashingError(f"cannot hash an object of type {_qualified_name(type(culprit))}: {exc}") from exc
    return hasher.hexdigest()


class CanonicalPickler(pickle.Pickler):
    """Pickle objects in their canonical form (see the module docstring) to ``update``.

    Parameters
    ----------
    update : callable
        Receives the pickle stream, piece by piece.
    hash_name : str
        The algorithm, used for the digests of arrays and of unorderable keys.
    track_identity : bool
        See :func:`canonical_digest`.
    """

    def __init__(self, update: Callable[[bytes], object], hash_name: str, *, track_identity: bool) -> None:
        super().__init__(_HashWriter(update), protocol=_PROTOCOL)
        self.fast = not track_identity
        self.hash_name = hash_name
        self.track_identity = track_identity
        # The last object handed to the pickler's own reduction: when pickling fails, the culprit.
        self.last_unhandled: object = None
        self._positions: dict[int, int] = {}
        # Keeps every object in _positions alive, so that no id is reused during the dump.
        self._keep_alive: list[object] = []

    def persistent_id(self, obj: Any) -> Any:
        """Return the canonical form replacing ``obj``, or None to pickle it as it is."""
        cls = type(obj)
        if cls in _PICKLED_AS_IS:
            return None
        if self.track_identity:
            position = self._positions.get(id(obj))
            if position is not None:
                return (_Tag.BACK_REFERENCE, position)
        form = _FORMS.get(cls, CanonicalPickler._form_by_protocol)(self, obj)
        if form is not None and self.track_identity:
            self._positions[id(obj)] = len(self._positions)
            self._keep_alive.append(obj)
        return form

    def sub_digest(self, obj: object) -> str:
        """Hash ``obj`` on its own, with the same algorithm and identity tracking."""
        return canonical_digest(obj, self.hash_name, track_identity=self.track_identity)

    def _form_by_protocol(self, obj: Any) -> Any:
        # Types not in _FORMS: subclasses of the handled types, and lazy arrays.
        if isinstance(obj, np.ndarray):
            return self._array_form(obj)
        if isinstance(obj, np.generic):
            return self._scalar_form(obj)
        if isinstance(obj, np.dtype):
            return (_Tag.DTYPE, dtype_token(obj))
        if isinstance(obj, type):
            return self._class_form(obj)
        if isinstance(obj, dict):
            return self._dict_subclass_form(obj)
        if isinstance(obj, set | frozenset):
            how, elements = self._ordered_elements(obj)
            return (_Tag.SET_SUBCLASS, type(obj), how, elements, getattr(obj, "__dict__", None))
        if hasattr(type(obj), "__array__") and hasattr(obj, DIGEST_ATTRIBUTE):
            return self._lazy_array_form(obj)
        self.last_unhandled = obj
        return None

    def _ordered_items(self, items: list[tuple[Any, Any]]) -> tuple[str, list[tuple[Any, Any]]]:
        key_types = {type(key) for key, _ in items}
        if len(key_types) <= 1 and key_types <= _NATURALLY_ORDERED:
            items.sort(key=_first)
            return "by-key", items
        keyed = [(self.sub_digest(key), value) for key, value in items]
        keyed.sort(key=_first)
        return "by-key-digest", keyed

    def _ordered_elements(self, elements: Iterable[Any]) -> tuple[str, list[Any]]:
        listed = list(elements)
        element_types = set(map(type, listed))
        if len(element_types) <= 1 and element_types <= _NATURALLY_ORDERED:
            listed.sort()
            return "by-value", listed
        return "by-digest", sorted(map(self.sub_digest, listed))

    def _dict_form(self, obj: dict[Any, Any]) -> Any:
        return (_Tag.DICT, *self._ordered_items(list(obj.items())))

    def _set_form(self, obj: set[Any] | frozenset[Any]) -> Any:
        tag = _Tag.SET if type(obj) is set else _Tag.FROZENSET
        return (tag, *self._ordered_elements(obj))

    def _dict_subclass_form(self, obj: dict[Any, Any]) -> Any:
        self.last_unhandled = obj
        if isinstance(obj, OrderedDict):
            # Order is part of an OrderedDict's value (it takes part in ==): keep it.
            return None
        reduced = obj.__reduce_ex__(_PROTOCOL)
        if not isinstance(reduced, tuple) or len(reduced) < 5 or reduced[4] is None:
            return None
        list_items = None if reduced[3] is None else list(reduced[3])
        how, items = self._ordered_items(list(reduced[4]))
        return (_Tag.DICT_SUBCLASS, reduced[0], reduced[1], reduced[2], list_items, how, items)

    def _array_form(self, arr: npt.NDArray[Any]) -> Any:
        cls = type(arr)
        if cls is np.ndarray or isinstance(arr, np.memmap):
            return self._plain_array_form(arr)
        masked = sys.modules.get("numpy.ma")
        if masked is not None and isinstance(arr, masked.MaskedArray):
            try:
                fill_value = arr.fill_value
            except AttributeError:  # np.ma.masked, the read-only constant, refuses to make one
                fill_value = None
            data, mask = masked.getdata(arr), masked.getmaskarray(arr)
            return (_Tag.MASKED_ARRAY, _qualified_name(cls), data, mask, fill_value)
        # Like numpy's own pickling of subclasses, attributes beyond the data are left out.
        return (_Tag.ARRAY_SUBCLASS, _qualified_name(cls), arr.view(np.ndarray))

    def _plain_array_form(self, arr: npt.NDArray[Any]) -> Any:
        if arr.dtype.hasobject:
            # Addresses mean nothing across processes: hash the elements themselves.
            return (_Tag.OBJECT_ARRAY, dtype_token(arr.dtype), arr.shape, arr.ravel().tolist())
        digest = None if type(arr) is np.ndarray else recorded_digest(arr, self.hash_name)
        if digest is None:
            digest = array_digest(arr, hash_name=self.hash_name)
        return (_Tag.ARRAY, dtype_token(arr.dtype), arr.shape, digest)

    def _lazy_array_form(self, obj: Any) -> Any:
        dtype = np.dtype(obj.dtype)
        digest = recorded_digest(obj, self.hash_name)
        if digest is None or dtype.hasobject:
            return self._plain_array_form(np.asarray(obj))
        shape = tuple(int(length) for length in obj.shape)
        return (_Tag.ARRAY, dtype_token(dtype), shape, digest)

    def _scalar_form(self, scalar: np.generic) -> Any:
        if scalar.dtype.names is not None:
            # A structured scalar (np.void): as a 0-d array, for its padding and object fields.
            return (_Tag.SCALAR, np.asarray(scalar))
        return (_Tag.SCALAR, dtype_token(scalar.dtype), scalar.tobytes())

    def _function_form(self, func: types.FunctionType) -> Any:
        closure = None
        if func.__closure__ is not None:
            closure = tuple(_cell_contents(cell) for cell in func.__closure__)
        return (
            _Tag.FUNCTION,
            func.__module__,
            func.__qualname__,
            func.__code__,
            func.__defaults__,
            func.__kwdefaults__,
            closure,
        )

    def _code_form(self, code: types.CodeType) -> Any:
        # Line numbers and file names are left out: moving a function does not change it.
        return (
            _Tag.CODE,
            code.co_qualname,
            code.co_argcount,
            code.co_posonlyargcount,
            code.co_kwonlyargcount,
            code.co_flags,
            code.co_code,
            code.co_consts,
            code.co_names,
            code.co_varnames,
            code.co_freevars,
            code.co_cellvars,
            code.co_exceptiontable,
        )

    def _method_form(self, method: types.MethodType) -> Any:
        return (_Tag.METHOD, method.__func__, method.__self__)

    def _class_form(self, cls: type) -> Any:
        return (_Tag.CLASS, cls.__module__, cls.__qualname__)

    def _module_form(self, module: types.ModuleType) -> Any:
        return (_Tag.MODULE, module.__name__)

    def _empty_cell_form(self, cell: _EmptyCell) -> Any:
        return (_Tag.EMPTY_CELL,)


_FORMS: dict[type, Callable[[CanonicalPickler, Any], Any]] = {
    dict: CanonicalPickler._dict_form,
    set: CanonicalPickler._set_form,
    frozenset: CanonicalPickler._set_form,
    np.ndarray: CanonicalPickler._array_form,
    np.memmap: CanonicalPickler._array_form,
    types.FunctionType: CanonicalPickler._function_form,
    types.CodeType: CanonicalPickler._code_form,
    types.MethodType: CanonicalPickler._method_form,
    types.ModuleType: CanonicalPickler._module_form,
    type: CanonicalPickler._class_form,
    _EmptyCell: CanonicalPickler._empty_cell_form,
}


def _cell_contents(cell: types.CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:
        return _EMPTY_CELL


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
