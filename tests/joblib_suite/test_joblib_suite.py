"""joblib 1.6.0's own released tests, run against zoblib through a package named ``joblib``.

Each joblib test module runs in a subprocess (``joblib_suite_run``); its failing tests must be
exactly those listed in ``expected_failures.txt``, each under the cause it fails for. An unlisted
failure fails here with its message; so does a listed test that now passes, so the list stays
true. To make the list match the tree (reasons and notes are kept, new failures are added under
``unclassified``)::

    ZOBLIB_JOBLIB_SUITE_UPDATE=1 .venv/bin/python -m pytest tests/joblib_suite -p no:randomly
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib_suite_expected as expected_list
import pytest
from joblib_suite_run import JOBLIB_VERSION, build_tree, run_module

EXPECTED_FAILURES = Path(__file__).with_name("expected_failures.txt")
UPDATE = os.environ.get("ZOBLIB_JOBLIB_SUITE_UPDATE", "") not in ("", "0")

#: The joblib test modules run, slowest last. Left out: test_memory_async (needs pytest-asyncio),
#: and the tests of joblib's private modules only (memmapping, numpy_pickle_compat, disk, ...).
MODULES = (
    "test_config",
    "test_func_inspect",
    "test_hashing",
    "test_store_backends",
    "test_memory",
    "test_numpy_pickle",
    "test_parallel",
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shim and joblib's tests, laid out once for every module's run."""
    return build_tree(tmp_path_factory.mktemp(f"joblib-{JOBLIB_VERSION}-suite"))


def test_listed_modules_are_run() -> None:
    listed = expected_list.known_modules(expected_list.read(EXPECTED_FAILURES).by_test())
    assert listed <= set(MODULES), f"the list names tests of modules not run: {listed - set(MODULES)}"


@pytest.mark.parametrize("module", MODULES)
def test_joblib_module(tree: Path, module: str) -> None:
    run = run_module(tree, module)
    expected = expected_list.read(EXPECTED_FAILURES)
    counts = {s: sum(o.status == s for o in run.outcomes.values()) for s in ("passed", "failed", "error")}
    summary = f"joblib {JOBLIB_VERSION} {module}: {counts} in {run.seconds:.0f} s (log: {run.log})"
    print(summary)
    if UPDATE:
        new, changes = expected_list.updated(expected, run)
        expected_list.write(EXPECTED_FAILURES, new)
        print("\n".join(changes) or "expected_failures.txt already matched")
        return
    comparison = expected_list.compare(expected, run)
    assert comparison.matches, (
        f"{summary}\n{expected_list.describe(comparison, run.outcomes, module)}\n"
        "Fix zoblib, or edit tests/joblib_suite/expected_failures.txt (ZOBLIB_JOBLIB_SUITE_UPDATE=1 "
        "rewrites it)."
    )
