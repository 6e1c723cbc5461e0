"""The checked-in list of joblib tests expected to fail against zoblib, grouped by cause.

The file (``expected_failures.txt``) is plain text::

    # comments (kept on rewrite)
    == <key> (<category>[, flaky]): <reason>
    <test id>  # <optional note>

``category`` is one of :data:`CATEGORIES`. A test under a ``flaky`` cause may pass or fail; every
other listed test must fail, and every failing test must be listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from joblib_suite_run import ModuleRun, Outcome

#: (a) zoblib's public API differs from joblib's; (b) the test is of a joblib private module;
#: (c) a difference zoblib documents; (d) an artefact of running joblib's tests in this harness.
CATEGORIES = ("incompatibility", "private", "documented", "harness")

UNCLASSIFIED = "unclassified"
_CAUSE = re.compile(r"^== (?P<key>[\w.-]+) \((?P<category>\w+)(?P<flaky>, flaky)?\): (?P<reason>.+)$")
_NOTE_SEPARATOR = "  # "


class ExpectedListError(ValueError):
    """The expected-failures file is malformed (the message names the file and the line)."""


@dataclass
class Cause:
    """One reason for failing, and the tests that fail for it (test id -> note)."""

    key: str
    category: str
    reason: str
    flaky: bool = False
    tests: dict[str, str] = field(default_factory=dict)

    def header(self) -> str:
        flaky = ", flaky" if self.flaky else ""
        return f"== {self.key} ({self.category}{flaky}): {self.reason}"


@dataclass
class ExpectedList:
    """The whole file: its leading comments and its causes, in order."""

    comments: list[str]
    causes: list[Cause]

    def by_test(self, module: str | None = None) -> dict[str, Cause]:
        """The cause of every listed test (of ``<module>.py`` only, if given)."""
        prefix = "" if module is None else f"{module}.py::"
        return {test: cause for cause in self.causes for test in cause.tests if test.startswith(prefix)}


def read(path: Path) -> ExpectedList:
    """Parse the expected-failures file."""
    comments: list[str] = []
    causes: list[Cause] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.rstrip()
        where = f"{path}:{number}"
        if not line:
            continue
        if line.startswith("#"):
            if not causes:
                comments.append(line)
            continue
        if line.startswith("=="):
            match = _CAUSE.match(line)
            if match is None:
                raise ExpectedListError(f"{where}: a cause line reads '== key (category[, flaky]): reason'")
            if match["category"] not in CATEGORIES:
                raise ExpectedListError(f"{where}: category {match['category']!r} is not one of {CATEGORIES}")
            causes.append(Cause(match["key"], match["category"], match["reason"], bool(match["flaky"])))
            continue
        if not causes:
            raise ExpectedListError(f"{where}: a test id before any '== cause' line")
        test, _, note = line.partition(_NOTE_SEPARATOR)
        if "::" not in test:
            raise ExpectedListError(f"{where}: {test!r} is not a test id (module.py::test_name)")
        if test in seen:
            raise ExpectedListError(f"{where}: {test} is listed twice (first on line {seen[test]})")
        seen[test] = number
        causes[-1].tests[test] = note.strip()
    return ExpectedList(comments, causes)


def write(path: Path, expected: ExpectedList) -> None:
    """Write the file back: comments, then each non-empty cause with its tests sorted."""
    lines = [*expected.comments]
    for cause in expected.causes:
        if not cause.tests:
            continue
        lines += ["", cause.header()]
        for test in sorted(cause.tests):
            note = cause.tests[test]
            lines.append(f"{test}{_NOTE_SEPARATOR}{note}" if note else test)
    path.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Comparison:
    """How one module's run differs from the list."""

    unexpected: dict[str, Outcome]
    now_passing: list[str]
    not_run: dict[str, str]

    @property
    def matches(self) -> bool:
        return not (self.unexpected or self.now_passing or self.not_run)


def compare(expected: ExpectedList, run: ModuleRun) -> Comparison:
    """Failing tests not listed, listed tests that passed, and listed tests that did not run."""
    listed = expected.by_test(run.module)
    unexpected = {test: o for test, o in run.outcomes.items() if o.failing and test not in listed}
    now_passing: list[str] = []
    not_run: dict[str, str] = {}
    for test, cause in listed.items():
        outcome = run.outcomes.get(test)
        if outcome is None or outcome.status == "skipped":
            not_run[test] = "skipped" if outcome else "not collected"
        elif not outcome.failing and not cause.flaky:
            now_passing.append(test)
    return Comparison(unexpected, sorted(now_passing), not_run)


def first_line(message: str, limit: int = 120) -> str:
    """The line of a failure message worth keeping as a note (its ``E`` line if any)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    text = (errors or lines or [""])[0]
    actual = [line for line in lines if line.startswith("Actual message:")]
    if text.endswith("Regex pattern did not match.") and actual:
        text = actual[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def updated(expected: ExpectedList, run: ModuleRun) -> tuple[ExpectedList, list[str]]:
    """The list made true for ``run``'s module, and a line per change (reasons are kept).

    Listed tests that passed or did not run are dropped (flaky ones stay while they run);
    failing tests not listed are added under an ``unclassified`` cause, to be sorted by hand.
    """
    comparison = compare(expected, run)
    changes: list[str] = []
    for cause in expected.causes:
        for test in [*comparison.now_passing, *comparison.not_run]:
            if cause.tests.pop(test, None) is not None:
                state = comparison.not_run.get(test, "passes")
                changes.append(f"removed {test} ({state}; was {cause.key})")
    if comparison.unexpected:
        cause = _unclassified(expected.causes)
        for test, outcome in sorted(comparison.unexpected.items()):
            cause.tests[test] = first_line(outcome.message)
            changes.append(f"added {test} to {UNCLASSIFIED}: {cause.tests[test]}")
    return expected, changes


def _unclassified(causes: list[Cause]) -> Cause:
    for cause in causes:
        if cause.key == UNCLASSIFIED:
            return cause
    cause = Cause(UNCLASSIFIED, "incompatibility", "new failures, not yet sorted into a cause: classify them")
    causes.append(cause)
    return cause


def describe(comparison: Comparison, outcomes: Mapping[str, Outcome], module: str) -> str:
    """A readable account of a mismatch, with each unexpected failure's message."""
    parts: list[str] = []
    if comparison.unexpected:
        parts.append(f"{len(comparison.unexpected)} failing tests of {module} are not in the list:")
        for test, outcome in sorted(comparison.unexpected.items()):
            parts.append(f"--- {test} ({outcome.status})\n{_indent(outcome.message, 1500)}")
    if comparison.now_passing:
        parts.append(f"{len(comparison.now_passing)} listed tests now pass (remove them from the list):")
        parts += [f"    {test}" for test in comparison.now_passing]
    if comparison.not_run:
        parts.append(f"{len(comparison.not_run)} listed tests did not run:")
        parts += [f"    {test} ({why})" for test, why in sorted(comparison.not_run.items())]
    return "\n".join(parts)


def _indent(text: str, limit: int) -> str:
    text = text if len(text) <= limit else text[:limit] + " [...]"
    return "\n".join("    " + line for line in text.splitlines())


def known_modules(tests: Iterable[str]) -> set[str]:
    """The module names (``test_memory``) that listed tests belong to."""
    return {test.split(".py::", 1)[0] for test in tests}
