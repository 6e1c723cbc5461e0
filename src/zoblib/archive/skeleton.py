"""The pickle skeleton: the object graph with its big arrays replaced by references.

Arrays are swapped out through pickle's persistent ids (``persistent_id`` /
``persistent_load``), never by overriding ``Pickler.save``. The persistent id of an extracted
array is a non-negative int, an index into the archive's ``refs`` list. Masked arrays are
reduced to their data and mask arrays so both can be extracted too.
"""

from __future__ import annotations

import contextvars
import io
import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle
import numpy as np

from zoblib.archive.lazy import LazyArray
from zoblib.errors import UntrustedContentError
from zoblib.safety.audit import allow_call, report_of
from zoblib.safety.policy import Policy
from zoblib.safety.unpickler import GuardedUnpickler, UnsafeOperation

#: Decides, for one array met while pickling, its reference (or ``None`` to pickle it inline).
Extractor = Callable[[np.ndarray[Any, Any]], int | None]
_EXTRACTABLE_TYPES = (np.ndarray, np.memmap)
#: Set while loading with ``ensure_native_byte_order=True``.
NATIVE_BYTE_ORDER: contextvars.ContextVar[bool] = contextvars.ContextVar("native", default=False)


def rebuild_array(data: bytes, dtype: np.dtype[Any], shape: tuple[int, ...], order: str) -> Any:
    """Rebuild an inline array from its bytes (named in skeletons: keep it importable).

    numpy's own pickling turns some dtypes native (datetimes, long doubles, strided or old
    protocols); this keeps them exact. Under ``load(..., ensure_native_byte_order=True)`` the
    array comes back in native byte order. Object dtypes are refused: their bytes would be
    pointers (numpy's ``frombuffer`` refuses them too; this says so first).
    """
    if np.dtype(dtype).hasobject:
        raise pickle.UnpicklingError(f"an inline array of dtype {dtype!r} cannot come from raw bytes")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy(order=order)  # type: ignore[call-overload]
    if NATIVE_BYTE_ORDER.get() and not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _needs_exact_reduce(array: np.ndarray[Any, Any]) -> bool:
    dtype = array.dtype
    return not dtype.hasobject and (not dtype.isnative or dtype.kind in "Mm" or dtype.char in "gG")


def rebuild_masked_array(
    data: np.ndarray[Any, Any], mask: Any, fill_value: Any, hard_mask: bool
) -> np.ma.MaskedArray[Any, Any]:
    """Rebuild a masked array from its extracted parts (named in skeletons: keep it importable).

    ``mask`` is ``False`` (the Python bool) for an array without a mask (``np.ma.nomask``).
    """
    if mask is False:
        mask = np.ma.nomask
    return np.ma.MaskedArray(data, mask=mask, fill_value=fill_value, hard_mask=hard_mask, copy=False)


class _ArrayExtraction:
    """Pickler mix-in that hands arrays to an :data:`Extractor`."""

    extractor: Extractor
    #: Values read from lazy arrays met while pickling (kept alive, so ids are not reused).
    _lazy_values: dict[int, tuple[LazyArray, np.ndarray[Any, Any]]]

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) in _EXTRACTABLE_TYPES:
            return self.extractor(obj)
        if type(obj) is LazyArray:
            # Store the values, not a reference to the archive it came from (which may go).
            if id(obj) not in self._lazy_values:
                self._lazy_values[id(obj)] = (obj, obj.read())
            return self.extractor(self._lazy_values[id(obj)][1])
        return None

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) in _EXTRACTABLE_TYPES and _needs_exact_reduce(obj):
            order = "F" if obj.flags.f_contiguous and not obj.flags.c_contiguous else "C"
            return rebuild_array, (obj.tobytes(order=order), obj.dtype, obj.shape, order)
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
        self._lazy_values = {}


class SkeletonCloudPickler(_ArrayExtraction, cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle's pickler with array extraction, for lambdas and local classes."""

    def __init__(self, file: io.BytesIO, protocol: int, extractor: Extractor) -> None:
        super().__init__(file, protocol=protocol)
        self.extractor = extractor
        self._lazy_values = {}


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


class _ArrayReferences:
    """Unpickler mix-in resolving persistent ids (array references) through ``resolve``."""

    _resolve: Callable[[int], Any]

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, str) and pid.isdigit():  # protocol 0 writes persistent ids as text
            pid = int(pid)
        if isinstance(pid, bool) or not isinstance(pid, int) or pid < 0:
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        return self._resolve(pid)


class SkeletonUnpickler(_ArrayReferences, pickle.Unpickler):
    """Unpickles a skeleton, asking ``resolve`` for each referenced array (the C unpickler)."""

    def __init__(self, file: io.BytesIO, resolve: Callable[[int], Any]) -> None:
        super().__init__(file)
        self._resolve = resolve


class SafeSkeletonUnpickler(_ArrayReferences, GuardedUnpickler):
    """Unpickles a skeleton under a :class:`~zoblib.safety.Policy` (pure Python, checked)."""

    def __init__(self, file: io.BytesIO, resolve: Callable[[int], Any], policy: Policy) -> None:
        super().__init__(file, policy=policy)
        self._resolve = resolve


def loads_skeleton(
    data: bytes, resolve: Callable[[int], Any], *, policy: Policy | None = None, path: str | None = None
) -> Any:
    """Rebuild the object graph of a skeleton.

    Without ``policy``, the C unpickler runs whatever the skeleton names (joblib's load). With
    one, the skeleton is scanned first and refused before anything runs if it names a global
    outside the policy; the guarded unpickler then checks every global and call again as it
    runs. Refusals raise :class:`~zoblib.UntrustedContentError` naming ``path``.
    """
    if policy is None:
        return SkeletonUnpickler(io.BytesIO(data), resolve).load()
    try:
        report = report_of(path or "<archive>", data, policy)
    except ValueError as exc:
        raise pickle.UnpicklingError(str(exc)) from exc
    if report.untrusted:
        raise UntrustedContentError(
            path,
            f"refused to load with safe=True: the skeleton names {len(report.untrusted)} "
            f"global(s) outside the allowlist: {', '.join(report.untrusted)}. If you trust this "
            f"file, load it with {report.allow_call()}",
            report.untrusted,
            report.allow_call(),
        )
    try:
        return SafeSkeletonUnpickler(io.BytesIO(data), resolve, policy).load()
    except UnsafeOperation as exc:
        call = allow_call(path or "<archive>", ("<refused operation>",))
        raise UntrustedContentError(
            path,
            f"refused to load with safe=True: {exc}. If you trust this file, load it with {call}",
            (f"<{exc}>",),
            call,
        ) from None
