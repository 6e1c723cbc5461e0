"""Every crafted archive of ``files/`` is refused by ``load(safe=True)`` and leaves no trace.

Each test also proves its file is a working attack: in a fresh process, the default (unsafe)
``load`` of the same file creates the marker (or crashes the interpreter, for the memory
gadgets). The files are written by ``make_attacks.py``; ``test_files_are_current`` checks
that every gadget has its file.
"""

from __future__ import annotations

import copyreg
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from make_attacks import EXTENSION_CODE, FILES, GADGETS, SIDE_EFFECT_MODULE

import zoblib
from zoblib.safety import GuardedUnpickler, Policy, UnsafeOperation

CRASHING = {"ndarray_buffer", "newobj_ndarray"}
#: Refused by pickle itself too (no such extension code): kept to test the audit's report.
BROKEN_EVEN_UNSAFE = {"ext_unregistered"}
#: Gadgets whose every global is allowed: the guarded unpickler refuses them as they run.
REFUSED_AS_THEY_RUN = {"ndarray_buffer", "newobj_ndarray"}
#: Gadgets refused as they run once the one foreign global they name is trusted.
REFUSED_AS_THEY_RUN_WITH = {
    "build_class_setstate": ["builtins.exec"],
    "build_function_defaults": ["builtins.exec"],
}
#: The global each gadget is about, which the refusal must name.
FEATURED = {
    "builtins_eval": "builtins.eval",
    "builtins_exec": "builtins.exec",
    "builtins_compile": "builtins.compile",
    "builtins_open": "builtins.open",
    "builtins_getattr": "builtins.getattr",
    "getattr_class_attribute": "pandas.DataFrame.to_pickle",
    "builtins_import": "builtins.__import__",
    "os_system": "os.system",
    "posix_system": "posix.system",
    "subprocess_run": "subprocess.run",
    "sys_modules": "collections._sys.modules.get",
    "module_attribute": "zoblib.archive.skeleton.pickle.loads",
    "rule_module_attribute": "sklearn.base.np.testing._private.utils.runstring",
    "operator_attrgetter": "operator.attrgetter",
    "operator_methodcaller": "operator.methodcaller",
    "pkgutil_resolve_name": "pkgutil.resolve_name",
    "importlib_import_module": "importlib.import_module",
    "numpy_testing_runstring": "numpy.testing._private.utils.runstring",
    "joblib_load_trampoline": "joblib.numpy_pickle.load",
    "pickle_loads_trampoline": "pickle.loads",
    "numpy_load_trampoline": "numpy.load",
    "object_array_elements": "posix.system",
    "python2_names": "builtins.eval",
    "inst_opcode": "os.system",
    "ext_opcode": "os.system",
    "random_trampoline": "os.system",
    "build_class_setstate": "builtins.exec",
    "build_function_defaults": "builtins.exec",
    "import_side_effect": f"{SIDE_EFFECT_MODULE}.anything",
}
SIDE_EFFECT_SOURCE = "open('marker-import_side_effect', 'w').close()\n"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The working directory where a payload would write its marker; the side-effect module."""
    (tmp_path / f"{SIDE_EFFECT_MODULE}.py").write_text(SIDE_EFFECT_SOURCE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    copyreg.add_extension("os", "system", EXTENSION_CODE)
    try:
        yield tmp_path
    finally:
        copyreg.remove_extension("os", "system", EXTENSION_CODE)
        sys.modules.pop(SIDE_EFFECT_MODULE, None)


def _unsafe_load_in_subprocess(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import copyreg, sys, zoblib\n"
        f"copyreg.add_extension('os', 'system', {EXTENSION_CODE})\n"
        "try:\n"
        f"    print(repr(zoblib.load({str(path)!r})))  # repr reads an object array's items\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(cwd)}
    environment.pop("ZOBLIB_SAFE_LOAD", None)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


def test_files_are_current() -> None:
    assert sorted(p.stem for p in FILES.glob("*.zip")) == sorted(GADGETS)
    assert set(FEATURED) | CRASHING | {"stack_global_computed", "ext_unregistered"} == set(GADGETS)


@pytest.mark.parametrize("gadget", sorted(GADGETS))
def test_safe_load_refuses_and_leaves_no_trace(gadget: str, workdir: Path) -> None:
    path = FILES / f"{gadget}.zip"
    marker = workdir / f"marker-{gadget}"
    with pytest.raises(zoblib.UntrustedContentError) as refused:
        zoblib.load(path, safe=True)
    report = zoblib.audit(path)
    assert not marker.exists()
    assert SIDE_EFFECT_MODULE not in sys.modules  # neither load nor audit imported it
    if gadget in FEATURED:
        assert FEATURED[gadget] in refused.value.untrusted
        assert FEATURED[gadget] in report.untrusted
    if gadget in REFUSED_AS_THEY_RUN:
        assert report.safe  # every global is allowed: the unpickler refused the call itself
        assert "calls" in str(refused.value) or "passes" in str(refused.value)
    else:
        assert not report.safe
        assert refused.value.untrusted == report.untrusted
        assert refused.value.allow_call == report.allow_call()


@pytest.mark.parametrize("gadget", sorted(REFUSED_AS_THEY_RUN_WITH))
def test_build_on_allowed_globals_is_refused_as_it_runs(gadget: str, workdir: Path) -> None:
    trusted = REFUSED_AS_THEY_RUN_WITH[gadget]
    path = FILES / f"{gadget}.zip"
    assert zoblib.audit(path, trusted=trusted).safe
    with pytest.raises(zoblib.UntrustedContentError, match="BUILD would modify"):
        zoblib.load(path, safe=True, trusted=trusted)
    assert not (workdir / f"marker-{gadget}").exists()


@pytest.mark.parametrize("gadget", sorted(GADGETS))
def test_the_guarded_unpickler_alone_refuses_every_gadget(gadget: str, workdir: Path) -> None:
    # Defence in depth, and joblib files' only defence (their pickle cannot be scanned ahead):
    # the skeleton run by the guarded unpickler with no scan first.
    skeleton = GADGETS[gadget][0](gadget)
    with pytest.raises((UnsafeOperation, ValueError)):
        GuardedUnpickler(io.BytesIO(skeleton), policy=Policy()).load()
    assert not (workdir / f"marker-{gadget}").exists()
    assert SIDE_EFFECT_MODULE not in sys.modules


@pytest.mark.parametrize("gadget", sorted(GADGETS))
def test_as_a_plain_pickle_file_too(gadget: str, workdir: Path) -> None:
    # A plain pickle loads through the reader of joblib's files: the same policy applies.
    path = workdir / f"{gadget}.pkl"
    path.write_bytes(GADGETS[gadget][0](gadget))
    expected = zoblib.ArchiveCorruptedError if gadget in BROKEN_EVEN_UNSAFE else zoblib.UntrustedContentError
    with pytest.raises(expected):
        zoblib.load(path, safe=True)
    assert not (workdir / f"marker-{gadget}").exists()
    assert SIDE_EFFECT_MODULE not in sys.modules


def test_computed_names_are_unnamed_in_the_audit(workdir: Path) -> None:
    report = zoblib.audit(FILES / "stack_global_computed.zip")
    assert any(name.startswith("<STACK_GLOBAL of computed names") for name in report.untrusted)
    assert report.allow_call().endswith("safe=False)")


def test_unregistered_extension_codes_are_unnamed(workdir: Path) -> None:
    report = zoblib.audit(FILES / "ext_unregistered.zip")
    assert report.untrusted == ("<EXT2 code 32752, not in copyreg's extension registry>",)


def test_object_dtype_nodes_are_refused_in_every_mode(workdir: Path) -> None:
    path = FILES / "object_dtype_node.zarr"
    for safe in (False, True):
        for mmap_mode in (None, "r"):
            with pytest.raises(zoblib.ArchiveCorruptedError, match="object dtype"):
                zoblib.load(path, mmap_mode=mmap_mode, safe=safe)


@pytest.mark.parametrize("gadget", sorted(GADGETS))
def test_the_unsafe_default_load_runs_the_payload(gadget: str, tmp_path: Path) -> None:
    (tmp_path / f"{SIDE_EFFECT_MODULE}.py").write_text(SIDE_EFFECT_SOURCE)
    result = _unsafe_load_in_subprocess(FILES / f"{gadget}.zip", tmp_path)
    if gadget in CRASHING:
        assert result.returncode < 0, result.stdout + result.stderr
    elif gadget in BROKEN_EVEN_UNSAFE:
        assert "unregistered extension code" in result.stdout, result.stdout + result.stderr
    else:
        assert (tmp_path / f"marker-{gadget}").exists(), result.stdout + result.stderr
