"""The policy: exact names, rules that check the object they find, and modules never imported."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from zoblib.safety import GuardedUnpickler, Policy, UnsafeOperation
from zoblib.safety.allowlist import EXACT, RULES
from zoblib.safety.scan import scan_globals


@pytest.mark.parametrize(
    ("module", "qualname"),
    [
        ("sklearn.linear_model._logistic", "LogisticRegression"),
        ("sklearn.tree._tree", "Tree"),
        ("sklearn._loss._loss", "CyHalfBinomialLoss"),
        ("sklearn.utils._bunch", "Bunch"),
        ("sklearn.neighbors._kd_tree", "KDTree"),
        ("scipy.sparse._csr", "csr_matrix"),
        ("pandas.core.internals.blocks", "NumpyBlock"),
        ("pandas", "DataFrame"),
        ("numpy", "float64"),
        ("numpy", "log1p"),
        ("numpy.dtypes", "Float64DType"),
    ],
)
def test_rules_admit_their_families(module: str, qualname: str) -> None:
    assert Policy().allows(module, qualname)


@pytest.mark.parametrize(
    ("module", "qualname", "why"),
    [
        ("sklearn.base", "clone", "a function, not a class"),
        ("sklearn.linear_model", "LogisticRegression", "a re-export: the class's __module__ differs"),
        ("sklearn.base", "np.ndarray", "reached through a module attribute"),
        ("sklearn.utils._testing", "TempMemmap", "a denied module (test helpers)"),
        ("sklearn.utils.parallel", "delayed", "a denied module (runs functions)"),
        ("sklearn.datasets._openml", "fetch_openml", "a denied module (downloads)"),
        ("pandas.io.pickle", "read_pickle", "a denied module (file readers)"),
        ("pandas", "read_pickle", "a function"),
        ("pandas", "HDFStore", "a re-export of pandas.io's file store"),
        ("pandas", "ExcelWriter", "a re-export of pandas.io's file writer"),
        ("pandas", "ExcelFile", "a re-export of pandas.io's file reader"),
        ("pandas.core.computation.expr", "Expr", "pandas' expression evaluator"),
        ("scipy.sparse.linalg", "LinearOperator", "not a sparse matrix"),
        ("numpy", "load", "a numpy function outside the list"),
        ("numpy", "testing", "a module"),
        ("numpy.testing._private.utils", "runstring", "not in the allowlist"),
        ("collections", "_sys", "a module"),
        ("builtins", "getattr", "not in the allowlist"),
        ("builtins", "type", "not in the allowlist"),
    ],
)
def test_refused_names(module: str, qualname: str, why: str) -> None:
    assert not Policy().allows(module, qualname), why


def test_every_exact_entry_has_a_reason_and_resolves() -> None:
    policy = Policy()
    missing = []
    for (module, qualname), entry in EXACT.items():
        assert entry.reason
        if module.startswith("numpy.core"):  # numpy 1's names, kept for old files
            continue
        if not policy.allows(module, qualname):
            missing.append(f"{module}.{qualname}")
    assert missing == []
    assert all(rule.reason for rule in RULES)


def test_resolving_never_imports_a_module_outside_the_allowlist(tmp_path: object) -> None:
    # In a fresh process: the policy and the scan import none of these modules.
    code = textwrap.dedent(
        """
        import sys
        from zoblib.safety import Policy
        policy = Policy()
        names = [("antigravity", "x"), ("sklearn.utils._testing", "TempMemmap"),
                 ("sklearn.externals._arff", "ArffDecoder"), ("pandas.io.pickle", "read_pickle"),
                 ("sklearn.datasets._openml", "fetch_openml"), ("numpy.testing", "assert_equal"),
                 ("pandas.core.computation.expr", "Expr"), ("sklearn.tests.test_base", "T")]
        assert not any(policy.allows(m, q) for m, q in names)
        print(sorted(m for m, _ in names if m in sys.modules or m.split(".")[0] == "antigravity"
                     and "antigravity" in sys.modules))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_trusted_by_string_and_by_object() -> None:
    assert Policy(trusted=[f"{os.getcwd.__module__}.getcwd"]).allows(os.getcwd.__module__, "getcwd")
    assert not Policy(trusted=["os.getcwd"]).allows("posix", "getcwd")  # names are as pickle writes them
    policy = Policy(trusted=[os.getcwd])
    assert policy.resolve(os.getcwd.__module__, "getcwd").value is os.getcwd
    with pytest.raises(TypeError, match="trusted="):
        Policy(trusted=[3])


def _guarded_load(data: bytes, **policy: object) -> object:
    return GuardedUnpickler(io.BytesIO(data), policy=Policy(**policy)).load()  # type: ignore[arg-type]


def test_the_unpickler_enforces_names_as_it_runs() -> None:
    with pytest.raises(UnsafeOperation, match=r"posix\.getcwd|os\.getcwd"):
        _guarded_load(pickle.dumps(os.getcwd))
    assert _guarded_load(pickle.dumps(os.getcwd), trusted=[os.getcwd]) is os.getcwd


def test_python2_names_are_checked_after_mapping() -> None:
    # Protocol 0 with Python 2's names: __builtin__.set is builtins.set (allowed).
    assert _guarded_load(b"c__builtin__\nset\n(]tR.") == set()
    with pytest.raises(UnsafeOperation, match=r"builtins\.eval"):
        _guarded_load(b"c__builtin__\neval\n.")


def test_getattr_is_allowed_only_for_listed_class_methods() -> None:
    # Protocol 0: getattr(collections.OrderedDict, 'fromkeys'), then getattr(ZoneInfo, '_unpickle').
    with pytest.raises(UnsafeOperation, match="only for a few class methods"):
        _guarded_load(b"c__builtin__\ngetattr\n(ccollections\nOrderedDict\nVfromkeys\ntR.")
    unpickle = _guarded_load(b"c__builtin__\ngetattr\n(czoneinfo\nZoneInfo\nV_unpickle\ntR.")
    assert unpickle.__name__ == "_unpickle"  # type: ignore[attr-defined]
    assert scan_globals(b"c__builtin__\ngetattr\n(czoneinfo\nZoneInfo\nV_unpickle\ntR.").named == (
        ("zoneinfo", "ZoneInfo"),
        ("zoneinfo", "ZoneInfo._unpickle"),
    )
    assert ("builtins", "getattr") in scan_globals(b"c__builtin__\ngetattr\n.").named


def test_build_never_calls_a_setstate_the_pickle_put_on_the_instance() -> None:
    # MethodMetadataRequest: an allowed class with a __dict__ and no __setstate__. A first
    # BUILD stores a callable as its "__setstate__", a second would call it with the state.
    target = b"csklearn.utils._metadata_requests\nMethodMetadataRequest\n)\x81"
    shadow = b"}V__setstate__\ncbuiltins\nprint\ns"
    with pytest.raises(UnsafeOperation, match="would set __setstate__"):
        _guarded_load(b"\x80\x02" + target + shadow + b"b.", trusted=["builtins.print"])
    slot_state = b"(N}V__class__\ncbuiltins\ndict\nstb"
    with pytest.raises(UnsafeOperation, match="would set __class__"):
        _guarded_load(b"\x80\x02" + target + slot_state + b".")
