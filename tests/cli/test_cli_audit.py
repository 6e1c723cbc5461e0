"""``zoblib audit``: the globals a skeleton needs; exit 1 when any is outside the allowlist.

Coded against ``zoblib.audit(filename, *, trusted=()) -> AuditReport`` (path, globals,
untrusted, safe, allow_call()); skipped while this zoblib has no ``zoblib.audit``.
"""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import Run

import zoblib

pytestmark = pytest.mark.skipif(
    not callable(getattr(zoblib, "audit", None)), reason="zoblib.audit does not exist yet (issue 13 part 1)"
)


class Gadget:
    def __reduce__(self) -> tuple[object, ...]:
        return (pathlib.Path.touch, (pathlib.Path("marker"),))


def test_safe_archive(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "ok.zob"
    zoblib.dump({"x": np.ones(300_000), "n": 3, "small": np.arange(4)}, path)
    result = run("audit", path)
    assert result.returncode == 0, result.stderr
    assert "0 untrusted" in result.stdout
    document = json.loads(run("audit", "--json", path).stdout)
    assert document["safe"] is True and document["untrusted"] == [] and document["allow_call"] is None


def test_untrusted_global(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "gadget.zob"
    zoblib.dump({"g": Gadget()}, path)
    result = run("audit", path)
    assert result.returncode == 1
    assert "pathlib.Path.touch" in result.stdout and "UNTRUSTED" in result.stdout
    assert str(path) in result.stderr and "pathlib.Path.touch" in result.stderr
    assert not (tmp_path / "marker").exists()
    document = json.loads(run("audit", "--json", path).stdout)
    assert document["safe"] is False and "pathlib.Path.touch" in document["untrusted"]
    assert "pathlib.Path.touch" in document["allow_call"]
    trust = [option for name in document["untrusted"] for option in ("--trust", name)]
    trusted = run("audit", path, *trust)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr


def test_not_an_archive(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "junk.zob"
    path.write_bytes(b"junk")
    result = run("audit", path)
    assert result.returncode == 1 and "junk.zob" in result.stderr
