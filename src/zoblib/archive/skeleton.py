"""The pickle skeleton: the object graph with its big arrays replaced by references.

Arrays are swapped out through pickle's persistent ids (``persistent_id`` /
``persistent_load``), never by overriding ``Pickler.save``. The persistent id of an extracted
array is a non-negative int, an index into the archive's ``refs`` list. Masked arrays are
reduced to their data and mask arrays so both can be extracted too.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle
import numpy as np

from zoblib.archive.lazy import LazyArray

#: Decides, for one array met while pickling, its reference (or ``None`` to pickle it inline).
Extractor = Callable[[np.ndarray[Any, Any]], int | None]
_EXTRACTABLE_TYPES = (np.ndarray, np.memmap)


def rebuild_masked_array(
    data: np.ndarray[Any, Any], mask: Any, fill_value: Any, hard_mask: bool
) -> np.ma.MaskedArray[Any, Any]:
    """Rebuild a masked array from its extracted parts (named in skeletons: keep it importable)."""
    return np.ma.MaskedArray(data, mask=mask, fill_value=fill_value, hard_mask=hard_mask, copy=False)


class _ArrayExtraction:
    """Pickler mix-in that hands arrays to an :data:`Extractor`."""

    extractor: Extractor

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) in _EXTRACTABLE_TYPES:
            return self.extractor(obj)
        if type(obj) is LazyArray:
            # Store the values, not a reference to the archive it came from (which may go).
            if not hasattr(self, "_lazy_values"):
                self._lazy_values: dict[int, tuple[LazyArray, np.ndarray[Any, Any]]] = {}
            if id(obj) not in self._lazy_values:
                self._lazy_values[id(obj)] = (obj, obj.read())
            return self.extractor(self._lazy_values[id(obj)][1])
        return None

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is np.ma.MaskedArray:
            mask = obj.mask if obj.mask is not np.ma.nomask else False
            state = (np.asarray(obj.data), mask, obj.fill_value, bool(obj.hardmask))
            return rebuild_masked_array, state
        parent = getattr(super(), "reducer_override", None)
        return NotImplemented if parent is None else parent(obj)


class SkeletonPickler(_ArrayExtraction, pickle.Pickler):
    """The standard pickler with array extraction."""

    def __init__(self, file: io.BytesIO, protocol: int, extractor: Extractor) -> None:
        super().__init__(file, protocol=protocol)
        self.extractor = extractor


class SkeletonCloudPickler(_ArrayExtraction, cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle's pickler with array extraction, for lambdas and local classes."""

    def __init__(self, file: io.BytesIO, protocol: int, extractor: Extractor) -> None:
        super().__init__(file, protocol=protocol)
        self.extractor = extractor


def dumps_skeleton(
    value: Any, protocol: int, extractor: Extractor, reset: Callable[[], None]
) -> tuple[bytes, str]:
    """Pickle ``value``; returns the skeleton and the pickler used ('pickle' or 'cloudpickle').

    Plain pickle is tried first (faster); objects it refuses (lambdas, local functions and
    classes) make the whole graph go through cloudpickle; ``reset`` forgets the arrays the
    failed attempt extracted.
    """
    buffer = io.BytesIO()
    try:
        SkeletonPickler(buffer, protocol, extractor).dump(value)
        return buffer.getvalue(), "pickle"
    except (pickle.PicklingError, AttributeError, TypeError):
        reset()
        buffer = io.BytesIO()
        SkeletonCloudPickler(buffer, protocol, extractor).dump(value)
        return buffer.getvalue(), "cloudpickle"


class SkeletonUnpickler(pickle.Unpickler):
    """Unpickles a skeleton, asking ``resolve`` for each referenced array."""

    def __init__(self, file: io.BytesIO, resolve: Callable[[int], Any]) -> None:
        super().__init__(file)
        self._resolve = resolve

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self._resolve(pid)


def loads_skeleton(data: bytes, resolve: Callable[[int], Any]) -> Any:
    """Rebuild the object graph of a skeleton."""
    return SkeletonUnpickler(io.BytesIO(data), resolve).load()
