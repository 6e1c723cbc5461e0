"""The allowlist of safe loading, as data: every global a safe skeleton may name, and why.

Two kinds of entries:

* :data:`EXACT` names, each with the reason it is safe. Reviewed one by one: an entry that can
  run code of the file's choosing (``eval``, ``getattr``, a loader of nested pickles, a
  function that calls its argument) never belongs here.
* :data:`RULES`, for the families too large to list (scikit-learn's estimators and their
  internal types, pandas' internals, scipy's sparse classes, numpy's scalar types). A rule
  only ever imports modules under its own package, never a module whose dotted name has a
  segment of :data:`DENIED_SEGMENTS` or starts with one of its ``denied`` prefixes, and it
  admits what it finds only after checking the object itself: a class whose ``__module__``
  and ``__qualname__`` are exactly the names asked for (so nothing reached through a module
  attribute or a re-export passes), and the base class it must derive from.

An entry is *callable* when the skeleton may call it (``REDUCE``, ``NEWOBJ``): most are.
``numpy.ndarray`` and ``numpy.memmap`` may only be passed to numpy's own rebuild functions:
calling ``ndarray(shape, object, buffer)`` turns the file's bytes into object pointers, and
``memmap(filename, mode='w+')`` truncates a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Allowed:
    """Why a global is safe to name, and whether the skeleton may call it."""

    reason: str
    #: The skeleton may call it (``REDUCE``, ``NEWOBJ``).
    callable: bool = True
    #: It may be given the array classes that are never called (numpy's ``_reconstruct``
    #: calls ``ndarray.__new__(cls, shape, 'b')``: no buffer; its state is validated by numpy).
    takes_array_classes: bool = False


def _entries(
    module: str, reason: str, *names: str, callable: bool = True, takes_array_classes: bool = False
) -> dict[tuple[str, str], Allowed]:
    return {(module, name): Allowed(reason, callable, takes_array_classes) for name in names}


_NUMPY_REBUILD = "numpy's own pickling of arrays, scalars and dtypes (numpy validates the bytes)"
_NUMPY_RANDOM = "numpy's own pickling of random generators: builds a bit generator from its state"
_PANDAS_REBUILD = "pandas' own pickling: rebuilds an index, block or scalar from plain values"

#: Every exactly named global, ``(module, qualname)`` -> why it is safe.
EXACT: Mapping[tuple[str, str], Allowed] = {
    **_entries(
        "builtins",
        "a builtin container or scalar type: builds a value, runs no code of the file's",
        "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
        "object", "range", "set", "slice", "str", "tuple",
    ),
    **_entries("builtins", "a builtin singleton", "Ellipsis", "NotImplemented", callable=False),
    **_entries(
        "copyreg",
        "pickle's own helpers: ``cls.__new__(cls, ...)`` of a class that must itself be allowed",
        "_reconstructor", "__newobj__", "__newobj_ex__",
    ),
    **_entries(
        "collections",
        "a standard container (a defaultdict's factory must itself be an allowed global)",
        "Counter", "OrderedDict", "defaultdict", "deque",
    ),
    **_entries("datetime", "a date or time value", "date", "datetime", "time", "timedelta", "timezone"),
    **_entries("decimal", "a number value", "Decimal"),
    **_entries("fractions", "a number value", "Fraction"),
    **_entries("dateutil.relativedelta", "a date offset value (pandas' DateOffset)", "relativedelta"),
    **_entries(
        "zoneinfo",
        "a time zone of the system's tz database, by key (zoneinfo refuses keys that are paths)",
        "ZoneInfo",
    ),
    # numpy: arrays, scalars, dtypes (numpy 2 names, and numpy 1's, which numpy 2 still maps).
    **_entries("numpy._core.multiarray", _NUMPY_REBUILD, "_reconstruct", takes_array_classes=True),
    **_entries("numpy.core.multiarray", _NUMPY_REBUILD, "_reconstruct", takes_array_classes=True),
    **_entries("numpy._core.multiarray", _NUMPY_REBUILD, "scalar"),
    **_entries("numpy.core.multiarray", _NUMPY_REBUILD, "scalar"),
    **_entries("numpy._core.numeric", _NUMPY_REBUILD, "_frombuffer"),
    **_entries("numpy.core.numeric", _NUMPY_REBUILD, "_frombuffer"),
    **_entries(
        "numpy.ma.core", "numpy's own pickling of masked arrays", "_mareconstruct", takes_array_classes=True
    ),
    **_entries("numpy", "numpy's dtype: built from a type code, validated by numpy", "dtype"),
    **_entries(
        "numpy",
        "an array class: only as an argument of numpy's rebuild functions, never called",
        "ndarray", "memmap", "matrix",
        callable=False,
    ),
    **_entries("numpy.ma.core", "an array class, never called", "MaskedArray", callable=False),
    **_entries(
        "numpy",
        "a numpy reduction stored as an estimator parameter (FeatureAgglomeration's pooling_func)",
        "mean", "median", "sum", "max", "min", "amax", "amin", "std", "var", "nanmean", "nanmedian",
    ),
    **_entries(
        "numpy.random._pickle", _NUMPY_RANDOM,
        "__bit_generator_ctor", "__generator_ctor", "__randomstate_ctor",
    ),
    **_entries("numpy.random.bit_generator", _NUMPY_RANDOM, "SeedSequence", "__pyx_unpickle_SeedSequence"),
    **_entries("numpy.random._mt19937", _NUMPY_RANDOM, "MT19937"),
    **_entries("numpy.random._pcg64", _NUMPY_RANDOM, "PCG64", "PCG64DXSM"),
    **_entries("numpy.random._philox", _NUMPY_RANDOM, "Philox"),
    **_entries("numpy.random._sfc64", _NUMPY_RANDOM, "SFC64"),
    **_entries("numpy.random.mtrand", _NUMPY_RANDOM, "RandomState"),
    **_entries("numpy.random._generator", _NUMPY_RANDOM, "Generator"),
    # zoblib's own rebuild functions (src/zoblib/archive/skeleton.py).
    **_entries(
        "zoblib.archive.skeleton",
        "zoblib's rebuild of an inline array from raw bytes (object dtypes refused) or of a masked array",
        "rebuild_array", "rebuild_masked_array",
    ),
    # scipy: the spline scikit-learn's SplineTransformer keeps.
    **_entries("scipy.interpolate._bsplines", "a spline value (SplineTransformer's bsplines_)", "BSpline"),
    # pandas' rebuild functions and singletons.
    **_entries(
        "pandas.core.indexes.base", _PANDAS_REBUILD, "_new_Index",
    ),
    **_entries("pandas.core.indexes.datetimes", _PANDAS_REBUILD, "_new_DatetimeIndex"),
    **_entries("pandas.core.indexes.timedeltas", _PANDAS_REBUILD, "_new_TimedeltaIndex"),
    **_entries("pandas.core.indexes.period", _PANDAS_REBUILD, "_new_PeriodIndex"),
    **_entries("pandas.core.indexes.interval", _PANDAS_REBUILD, "_new_IntervalIndex"),
    **_entries("pandas.core.internals.blocks", _PANDAS_REBUILD, "new_block", "maybe_coerce_values"),
    **_entries("pandas._libs.internals", _PANDAS_REBUILD, "_unpickle_block"),
    **_entries("pandas._libs.tslibs.timestamps", _PANDAS_REBUILD, "_unpickle_timestamp"),
    **_entries("pandas._libs.tslibs.timedeltas", _PANDAS_REBUILD, "_timedelta_unpickle"),
    **_entries("pandas._libs.tslibs.nattype", _PANDAS_REBUILD, "_nat_unpickle"),
    **_entries("pandas", "a pandas missing-value singleton", "NA", "NaT", callable=False),
    # scikit-learn functions that fitted estimators keep as parameters or attributes.
    **_entries(
        "sklearn.feature_selection._univariate_selection",
        "a scoring function (SelectKBest's default score_func): computes statistics",
        "f_classif", "f_regression", "chi2", "r_regression", "f_oneway",
    ),
    **_entries(
        "sklearn.feature_selection._mutual_info",
        "a scoring function: computes statistics",
        "mutual_info_classif", "mutual_info_regression",
    ),
    **_entries(
        "sklearn.cluster._kmeans", "a k-means step (BisectingKMeans keeps it)",
        "_kmeans_single_lloyd", "_kmeans_single_elkan",
    ),
    **_entries(
        "sklearn.metrics._dist_metrics",
        "Cython's ``cls.__new__(cls)`` for distance metrics (the class must itself be allowed)",
        "newObj",
    ),
    **_entries(
        "sklearn.neighbors._kd_tree",
        "Cython's ``cls.__new__(cls)`` for KD trees (the class must itself be allowed)",
        "newObj",
    ),
    **_entries(
        "sklearn.neighbors._ball_tree",
        "Cython's ``cls.__new__(cls)`` for ball trees (the class must itself be allowed)",
        "newObj",
    ),
    **_entries(
        "scipy._lib.array_api_compat.numpy._aliases",
        "array API namespace function an estimator keeps (numpy's asarray)",
        "asarray",
    ),
}  # fmt: skip

#: ``builtins.getattr`` is not allowed, but the pattern pickle uses for class methods,
#: ``getattr(<allowed class>, '<name>')`` called at once, is allowed for these attributes
#: (each class itself allowed). The scan reports the pattern as the dotted name
#: ``module.Class.attribute``; the unpickler checks it again as it runs.
CLASS_ATTRIBUTES: Mapping[tuple[str, str], str] = {
    ("zoneinfo", "ZoneInfo._unpickle"): "zoneinfo's own pickling: a time zone by its key",
}

#: A module whose dotted name has one of these segments is never imported by a rule.
DENIED_SEGMENTS = frozenset(
    {"tests", "test", "testing", "_testing", "conftest", "__main__", "externals", "_pytest", "_build_utils"}
)


@dataclass(frozen=True)
class ClassRule:
    """Classes defined in modules under ``package``, deriving from ``base`` (when given)."""

    package: str
    reason: str
    #: ``"module:QualName"`` of the base class every admitted class derives from.
    base: str | None = None
    #: Module prefixes under ``package`` the rule never imports.
    denied: tuple[str, ...] = ()
    #: Only classes of exactly this module (``"numpy"``), not of its submodules.
    exact_module: bool = False

    def covers(self, module: str, qualname: str) -> bool:
        """Whether the names alone fall under this rule (before anything is imported)."""
        if self.exact_module and module != self.package:
            return False
        if module != self.package and not module.startswith(self.package + "."):
            return False
        return module_is_importable_by_rules(module, self.denied) and _plain_qualname(qualname)


@dataclass(frozen=True)
class CythonUnpickleRule:
    """Cython's generated ``__pyx_unpickle_<Class>`` functions in modules under ``package``.

    Each rebuilds an instance of the class it is named after (its first argument must be that
    class or a subclass, itself an allowed global) from a checksum-checked state.
    """

    package: str
    reason: str = "Cython's generated unpickler of an extension class"

    def covers(self, module: str, qualname: str) -> bool:
        inside = module == self.package or module.startswith(self.package + ".")
        return (
            inside
            and module_is_importable_by_rules(module, ())
            and qualname.startswith("__pyx_unpickle_")
            and _plain_qualname(qualname)
        )


@dataclass(frozen=True)
class UfuncRule:
    """numpy's ufuncs (``numpy.log1p``) in numpy's own namespace: pure element-wise maths."""

    package: str = "numpy"
    reason: str = "a numpy ufunc (element-wise maths) kept as an estimator parameter"

    def covers(self, module: str, qualname: str) -> bool:
        return module == self.package and _plain_qualname(qualname)


@dataclass(frozen=True)
class FunctionRule:
    """Public functions defined in exactly one of ``modules`` (scikit-learn's metrics)."""

    modules: tuple[str, ...]
    reason: str

    def covers(self, module: str, qualname: str) -> bool:
        return module in self.modules and qualname.isidentifier() and not qualname.startswith("_")


Rule = ClassRule | CythonUnpickleRule | UfuncRule | FunctionRule

_SKLEARN_DENIED = (
    "sklearn.utils.parallel",
    "sklearn.utils._joblib",
    "sklearn.utils._show_versions",
    "sklearn.utils._mocking",
    "sklearn.datasets",
)
_PANDAS_DENIED = (
    "pandas.io",
    "pandas.plotting",
    "pandas.core.computation",
    "pandas.core.interchange",
    "pandas._config",
    "pandas.util",
    "pandas.compat",
    "pandas.api",
)

#: Families of globals admitted by checking the resolved object. Deliberately absent:
#: scipy.stats distributions (``RandomizedSearchCV``'s parameter grids), whose ``__setstate__``
#: rebuilds an argument parser with ``exec`` from a template and the pickled ``shapes``.
RULES: tuple[Rule, ...] = (
    ClassRule(
        "sklearn",
        "a scikit-learn class (estimators and their internal types: trees, losses, binning, "
        "neighbour trees, Bunch): constructing one and setting its state runs scikit-learn's code only",
        denied=_SKLEARN_DENIED,
    ),
    CythonUnpickleRule("sklearn"),
    FunctionRule(
        ("sklearn.metrics._classification", "sklearn.metrics._regression", "sklearn.metrics._ranking"),
        "a scikit-learn metric (a scorer's score_func, TunedThresholdClassifierCV's): computes a number",
    ),
    ClassRule(
        "scipy.sparse",
        "a scipy sparse matrix or array",
        base="scipy.sparse._base:_spbase",
        denied=("scipy.sparse.linalg", "scipy.sparse.csgraph"),
    ),
    ClassRule(
        "pandas",
        "a pandas data class (frames, series, indexes, blocks, extension arrays and dtypes, offsets)",
        denied=_PANDAS_DENIED,
    ),
    CythonUnpickleRule("pandas._libs"),
    ClassRule("numpy", "a numpy scalar type (numpy.float64)", base="numpy:generic", exact_module=True),
    ClassRule("numpy.dtypes", "a numpy dtype class", base="numpy:dtype", exact_module=True),
    UfuncRule(),
)


def module_is_importable_by_rules(module: str, denied: Iterable[str]) -> bool:
    """Whether a rule may import ``module``: no denied segment, not under a denied prefix.

    Examples
    --------
    >>> module_is_importable_by_rules("sklearn.tree._classes", ())
    True
    >>> module_is_importable_by_rules("sklearn.utils._testing", ()), module_is_importable_by_rules(
    ...     "pandas.io.pickle", ("pandas.io",)
    ... )
    (False, False)
    """
    parts = module.split(".")
    if any(not part.isidentifier() for part in parts) or DENIED_SEGMENTS.intersection(parts):
        return False
    return not any(module == prefix or module.startswith(prefix + ".") for prefix in denied)


def _plain_qualname(qualname: str) -> bool:
    # Dotted qualnames (nested classes) are walked class by class; never through a module.
    return all(part.isidentifier() for part in qualname.split("."))
