"""Fuzzing the reader: damaged archives end in the right data or a clean ``ArchiveError``.

Every container and compression setting gets a small base archive; hypothesis draws mutations
of it (bit flips, overwrites, truncation, garbage, ZIP member swaps and duplicates, ``.zarr``
chunk copies and deletions, hostile values in the JSON metadata, half of those re-stamping the
root record's checksum), and a sandboxed worker process reads each damaged copy with ``load``,
``load(mmap_mode='r')`` (every array read), ``LazyArray`` slices, ``load(..., verify=True)`` and
``verify``. The test fails listing every case whose outcome broke the contract (see
``fuzzing/runner.py``): another exception, a crash, a hang, excess memory or wrong data.

``ZOBLIB_FUZZ_LONG=1`` runs a thousand times more cases, with a fresh random seed each run;
``ZOBLIB_FUZZ_EXAMPLES=N`` sets the number of cases per base archive; ``ZOBLIB_FUZZ_REPORT=FILE``
appends the violations to FILE as JSON lines.
"""

from __future__ import annotations

import itertools
import os
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzzing.bases import SETTINGS, SUFFIXES, BaseArchive, build_base, original_object
from fuzzing.mutations import Mutation, apply_mutation, mutations
from fuzzing.runner import Violation, Worker, judge, summarize, write_report
from hypothesis import HealthCheck, Phase, given, settings

LONG = os.environ.get("ZOBLIB_FUZZ_LONG") == "1"
#: Cases per base archive (12 base archives).
EXAMPLES = int(os.environ.get("ZOBLIB_FUZZ_EXAMPLES", 40 * (1000 if LONG else 1)))
CASE_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def fuzz_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def fuzz_worker(fuzz_directory: Path) -> Iterator[Worker]:
    """One worker process for the module (restarted whenever a case kills it)."""
    expected = fuzz_directory / "expected.pkl"
    expected.write_bytes(pickle.dumps(original_object(), protocol=5))  # 4 loses byte order
    with Worker(expected, fuzz_directory, timeout=CASE_TIMEOUT) as worker:
        yield worker


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("container", sorted(SUFFIXES))
def test_damaged_archive_reads_right_or_raises(
    container: str, setting: str, fuzz_directory: Path, fuzz_worker: Worker, tmp_path: Path
) -> None:
    base = build_base(container, setting, fuzz_directory / f"{container}-{setting}")
    assert base.error is None, f"{base.name}: cannot build the base archive: {base.error}"
    violations = judge(base, None, None, fuzz_worker.run(str(base.path)))
    numbers = itertools.count()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not LONG,
        phases=[Phase.explicit, Phase.generate],  # nothing fails inside: nothing to shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(mutation=mutations(base))
    def run_case(mutation: Mutation) -> None:
        target = tmp_path / f"case-{next(numbers)}{SUFFIXES[container]}"
        applied = apply_mutation(base, mutation, target)
        try:
            violations.extend(judge(base, mutation, applied, fuzz_worker.run(str(target))))
        finally:
            _remove(target)

    run_case()
    report = os.environ.get("ZOBLIB_FUZZ_REPORT")
    if report:
        write_report(violations, report)
    assert not violations, _message(base, violations)


def _message(base: BaseArchive, violations: list[Violation]) -> str:
    return f"{base.name}: {EXAMPLES} damaged copies\n{summarize(violations)}"


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
