"""The parent's side of the fuzzer: a sandboxed worker process, and the reader's contract.

The contract: whatever an archive holds, every reading path ends in the right data, an
``ArchiveError`` whose message names the file, or ``FileNotFoundError``; never another
exception, a crash, a hang or wrong data. The one exception: ``load(mmap_mode='r')`` without
``verify`` hands out uncompressed arrays unchecked, so damage confined to their bytes may come
back as wrong data there (``verify`` and a plain ``load`` must still catch it).
"""

from __future__ import annotations

import collections
import json
import os
import re
import select
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from fuzzing import worker
from fuzzing.bases import BaseArchive
from fuzzing.mutations import Applied, Mutation

ALLOWED = {"ok", "archive-error", "not-found"}
Outcomes = dict[str, tuple[str, str]]


class Worker:
    """A long-lived subprocess running :mod:`fuzzing.worker`, restarted when it dies.

    Each case must finish within ``timeout`` seconds; the worker's address space is limited to
    ``memory_limit`` bytes, and it reports a case after which its peak memory passed
    ``memory_report`` bytes (then exits, so the next case starts from a fresh peak).
    """

    def __init__(
        self,
        expected: Path,
        log_directory: Path,
        *,
        timeout: float = 20.0,
        memory_limit: int = 2 << 30,
        memory_report: int = 768 << 20,
    ) -> None:
        self.expected = expected
        self.log_directory = log_directory
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.memory_report = memory_report
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._buffer = b""
        self._log: Path | None = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[bytes]:
        self.starts += 1
        self._log = self.log_directory / f"worker-{self.starts}.log"
        self._buffer = b""
        command = [sys.executable, worker.__file__, str(self.expected), str(self.memory_limit)]
        command.append(str(self.memory_report))
        with open(self._log, "wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
            )
        return self.process

    def close(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                assert self.process.stdin is not None
                self.process.stdin.close()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None

    def run(self, path: str) -> Outcomes:
        """The outcome of every reading path on the archive at ``path``."""
        process = self.process if self.process is not None and self.process.poll() is None else self._start()
        assert process.stdin is not None and process.stdout is not None
        outcomes: Outcomes = {}
        try:
            process.stdin.write((json.dumps({"path": path}) + "\n").encode())
            process.stdin.flush()
        except BrokenPipeError:
            pass  # it died: reading its answer finds the end of its output
        deadline = time.monotonic() + self.timeout
        while True:
            line = self._read_line(process, deadline)
            running = next((op for op in worker.OPERATIONS if op not in outcomes), "?")
            if line is None:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                    outcomes[running] = ("timeout", f"no answer within {self.timeout:g} s")
                else:
                    outcomes[running] = ("crash", f"exit code {process.returncode}; {self._log_tail()}")
                self.process = None
                return outcomes
            reply = json.loads(line)
            if reply.get("done"):
                if reply.get("exiting"):
                    process.wait(timeout=30)
                    self.process = None
                return outcomes
            outcomes[reply["op"]] = (reply["outcome"], reply["detail"])

    def _read_line(self, process: subprocess.Popen[bytes], deadline: float) -> bytes | None:
        assert process.stdout is not None
        descriptor = process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([descriptor], [], [], left)[0]:
                return None
            data = os.read(descriptor, 1 << 16)
            if not data:
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _log_tail(self) -> str:
        if self._log is None or not self._log.exists():
            return "no stderr"
        tail = self._log.read_bytes()[-600:].decode(errors="replace").strip()
        return f"stderr ends: {tail!r}" if tail else "empty stderr"


@dataclass(frozen=True)
class Violation:
    """One reading path of one case that broke the contract."""

    base: str
    category: str
    mutation: str
    operation: str
    outcome: str
    detail: str

    def line(self) -> str:
        return f"{self.base} | {self.mutation} | {self.operation}: {self.outcome}: {self.detail}"


def only_unchecked_bytes(base: BaseArchive, applied: Applied | None) -> bool:
    """Whether every byte the mutation changed lies in array data a memmap hands out unchecked."""
    if applied is None or not applied.touched:
        return False
    return all(
        any(t.file == u.file and u.start <= t.start and t.stop <= u.stop for u in base.unchecked)
        for t in applied.touched
    )


def judge(
    base: BaseArchive, mutation: Mutation | None, applied: Applied | None, outcomes: Outcomes
) -> list[Violation]:
    """The reading paths of one case whose outcome breaks the contract."""
    description = "no mutation (the intact base archive)" if mutation is None else mutation.describe()
    if applied is not None and applied.note:
        description += f" [{applied.note}]"
    category = "intact" if mutation is None else mutation.category
    unchecked = only_unchecked_bytes(base, applied)
    found = []
    for operation, (outcome, detail) in outcomes.items():
        if mutation is None and outcome == "ok":
            continue  # an intact archive must read back exactly, every way
        if mutation is not None and (
            outcome in ALLOWED or (operation == "mmap" and outcome == "wrong-data" and unchecked)
        ):
            continue
        found.append(Violation(base.name, category, description, operation, outcome, detail))
    if outcomes.get("verify", ("",))[0] == "ok" and outcomes.get("mmap", ("",))[0] == "wrong-data":
        detail = "verify passed an archive whose memory-mapped arrays read wrong data"
        found.append(Violation(base.name, category, description, "verify", "missed-damage", detail))
    return found


def summarize(violations: list[Violation]) -> str:
    """Violations grouped by container, mutation category, reading path and outcome, with
    a count and one reproducer each; then every violation."""
    groups: dict[tuple[str, str, str, str], list[Violation]] = collections.defaultdict(list)
    for violation in violations:
        container = violation.base.split("/")[0]
        groups[container, violation.category, violation.operation, violation.outcome].append(violation)
    lines = [f"{len(violations)} contract violations in {len(groups)} classes:"]
    for (container, category, operation, outcome), members in sorted(groups.items()):
        example = members[0]
        lines.append(f"- {container} + {category}: {operation} -> {outcome}, {len(members)} cases")
        lines.append(f"    e.g. {example.base} | {example.mutation} | {_short(example.detail)}")
    lines.append("Every violation:")
    lines.extend(v.line() for v in violations)
    return "\n".join(lines)


def _short(detail: str) -> str:
    return re.sub(r"'/[^']*'", "'<path>'", detail)[:300]


def write_report(violations: list[Violation], path: str) -> None:
    """Append the violations as JSON lines (``ZOBLIB_FUZZ_REPORT``), for analysis."""
    with open(path, "a") as file:
        for violation in violations:
            file.write(json.dumps(asdict(violation)) + "\n")
