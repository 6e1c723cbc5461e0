"""Runs one module of joblib's released tests against zoblib, in a subprocess, and reads the results.

The subprocess sees a tree built at run time in a temporary folder::

    <tree>/joblib/            the shim (``shim/joblib``): joblib's names bound to zoblib's
    <tree>/joblib/test/       joblib's own tests and test data, copied from the installed joblib
    <tree>/joblib/testing.py  joblib's test helpers, copied likewise, with two pure helpers
                              (``_multiprocessing_helpers``, ``backports``)
    <tree>/conftest.py        joblib's root fixtures restated (``suite_conftest.py``)
    <tree>/pytest.ini         this run's own pytest settings (not zoblib's)

With ``<tree>`` first on ``PYTHONPATH``, ``import joblib`` in the subprocess (and in its worker
processes) is the shim, while zoblib's own test process keeps the real joblib. Nothing of
joblib's code is committed here: it is copied from the installed package at every run.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

#: The joblib release whose tests are run (the ``joblib==`` pin of the ``test`` extra).
JOBLIB_VERSION = "1.6.0"

HERE = Path(__file__).resolve().parent
SHIM = HERE / "shim" / "joblib"

#: Files of the installed joblib copied into the tree: test support, not joblib's behaviour.
#: ``_multiprocessing_helpers`` (``mp``: multiprocessing, or None where it cannot work) and
#: ``backports`` (``LooseVersion``, ``concurrency_safe_rename``) import nothing of joblib.
COPIED_FILES = ("testing.py", "_multiprocessing_helpers.py", "backports.py")

#: A test running longer than this fails (pytest-timeout), so a hang cannot stall CI.
PER_TEST_TIMEOUT = float(os.environ.get("ZOBLIB_JOBLIB_SUITE_TIMEOUT", "60"))
#: The whole subprocess is killed past this, should a hang escape the per-test timeout.
RUN_TIMEOUT = float(os.environ.get("ZOBLIB_JOBLIB_SUITE_RUN_TIMEOUT", "1200"))

PYTEST_INI = """\
[pytest]
markers =
    thread_unsafe: joblib's mark for tests not safe under pytest-run-parallel
    no_cover: joblib's mark for tests kept out of coverage
junit_family = xunit2
junit_logging = no
faulthandler_timeout = {faulthandler}
"""


class SuiteRunError(RuntimeError):
    """The subprocess did not produce a usable report (crashed, killed, or could not start)."""


@dataclass(frozen=True)
class Outcome:
    """The result of one joblib test: ``passed``, ``failed``, ``error`` or ``skipped``."""

    status: str
    message: str = ""
    seconds: float = 0.0

    @property
    def failing(self) -> bool:
        return self.status in ("failed", "error")


@dataclass(frozen=True)
class ModuleRun:
    """One subprocess run of one joblib test module."""

    module: str
    outcomes: dict[str, Outcome]
    seconds: float
    log: Path


def installed_joblib() -> Path:
    """The folder of the real, installed joblib (checked to be the pinned release)."""
    version = importlib.metadata.version("joblib")
    if version != JOBLIB_VERSION:
        raise SuiteRunError(
            f"tests/joblib_suite runs joblib {JOBLIB_VERSION}'s tests, but joblib {version} is "
            f"installed: pip install 'joblib=={JOBLIB_VERSION}' (the test extra pins it)"
        )
    spec = importlib.util.find_spec("joblib")
    if spec is None or spec.origin is None:
        raise SuiteRunError("joblib is not importable: pip install -e '.[test]'")
    folder = Path(spec.origin).parent
    if folder == SHIM:
        raise SuiteRunError("the shim shadows joblib in zoblib's own test process")
    return folder


def build_tree(root: Path) -> Path:
    """Lay out the shim, joblib's tests and the run's settings under ``root``; returns ``root``."""
    joblib_folder = installed_joblib()
    package = root / "joblib"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(SHIM, package, ignore=ignore)
    for name in COPIED_FILES:
        shutil.copy2(joblib_folder / name, package / name)
    shutil.copytree(joblib_folder / "test", package / "test", ignore=ignore)
    shutil.copy2(HERE / "suite_conftest.py", root / "conftest.py")
    # pytest-timeout ends a hung test first; faulthandler then prints where every thread is.
    (root / "pytest.ini").write_text(PYTEST_INI.format(faulthandler=int(PER_TEST_TIMEOUT * 2)))
    return root


def _has_pytest_timeout() -> bool:
    return importlib.util.find_spec("pytest_timeout") is not None


def command(tree: Path, module: str, junit: Path) -> list[str]:
    """The pytest command line of the subprocess for ``joblib/test/<module>.py``."""
    args = [sys.executable, "-m", "pytest", "-c", str(tree / "pytest.ini"), "--rootdir", str(tree)]
    args += [f"--basetemp={basetemp(tree, module)}"]
    # Native tracebacks: pytest's own formatting parses the tests' source, which CPython 3.11
    # can fail (SystemError, an INTERNALERROR ending the run) after a test exhausted the stack.
    args += ["-p", "no:cacheprovider", f"--junitxml={junit}", "-v", "-rfE", "--tb=native"]
    if _has_pytest_timeout():
        args += ["-p", "pytest_timeout", f"--timeout={PER_TEST_TIMEOUT:g}", "--timeout-method=signal"]
    return [*args, f"joblib/test/{module}.py"]


def basetemp(tree: Path, module: str) -> Path:
    """The run's own temporary folder (the tests' ``tmp_path``), removed after the run."""
    return tree / f"{module}.tmp"


def environment(tree: Path) -> dict[str, str]:
    """The subprocess's environment: the tree first on the path, no outside pytest plugins."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """End the run's process group (the pytest process and any worker it left behind)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run_module(tree: Path, module: str) -> ModuleRun:
    """Run ``joblib/test/<module>.py`` against the shim and return every test's outcome."""
    junit = tree / f"{module}.junit.xml"
    log = tree / f"{module}.log"
    junit.unlink(missing_ok=True)
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command(tree, module, junit),
            cwd=tree,
            env=environment(tree),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.wait()
            raise SuiteRunError(
                f"{module}: killed after {RUN_TIMEOUT:g} s; the last lines of {log}:\n{tail(log)}"
            ) from None
        finally:
            # Workers whose parent exited should go by themselves; none may outlive the run.
            _kill_group(process)
            shutil.rmtree(basetemp(tree, module), ignore_errors=True)
    seconds = time.monotonic() - started
    if returncode not in (0, 1) or not junit.exists():
        raise SuiteRunError(f"{module}: pytest exited with {returncode}; the end of {log}:\n{tail(log)}")
    return ModuleRun(module, parse_junit(junit, module), seconds, log)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log, after the last test that started."""
    text = path.read_text(errors="replace").splitlines()
    started = [line for line in text if line.startswith("joblib/test/")]
    last = f"the last test started: {started[-1]}\n" if started else ""
    return last + "\n".join(text[-lines:])


def test_id(classname: str, name: str, module: str) -> str:
    """``test_memory.py::TestClass::test_name[param]`` from a JUnit classname and name."""
    prefix = f"joblib.test.{module}"
    if not classname.startswith(prefix):
        # A collection error names the module itself.
        return f"{module}.py::{name}"
    classes = [part for part in classname[len(prefix) :].split(".") if part]
    return "::".join([f"{module}.py", *classes, name])


def parse_junit(junit: Path, module: str) -> dict[str, Outcome]:
    """Every test case of a JUnit XML report, by test id."""
    outcomes: dict[str, Outcome] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        key = test_id(case.get("classname", ""), case.get("name", ""), module)
        seconds = float(case.get("time") or 0.0)
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status = "failed" if child.tag == "failure" and status != "error" else "error"
                message = (child.get("message") or "") + "\n" + (child.text or "")
                break
            if child.tag == "skipped":
                status, message = "skipped", child.get("message") or ""
        previous = outcomes.get(key)
        if previous is None or not previous.failing:
            outcomes[key] = Outcome(status, message.strip(), seconds)
    return outcomes
