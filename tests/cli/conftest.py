"""Fixtures of the ``zoblib`` command's tests: a way to run it, and real archives and caches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import CACHE_SCRIPT, COMMAND, SCRIPT, SUFFIXES, Run, model

import zoblib


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """``run("inspect", path, input=None, script=False)``: the command's exit code and output.

    Each run is a fresh process in ``tmp_path``: ``python -m zoblib``, or with ``script`` the
    installed ``zoblib`` console script.
    """

    def run_command(
        *args: Any, input: str | None = None, script: bool = False
    ) -> subprocess.CompletedProcess[str]:
        command = [str(SCRIPT)] if script else COMMAND
        return subprocess.run(
            [*command, *map(str, args)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            input=input if input is not None else "",
            env={**os.environ, "COLUMNS": "200"},
            timeout=120,
        )

    return run_command


@pytest.fixture(params=sorted(SUFFIXES))
def container(request: pytest.FixtureRequest) -> str:
    """Each container an archive can live in (the root conftest's fixture of that name differs)."""
    return str(request.param)


@pytest.fixture
def archive(tmp_path: Path, container: str) -> Path:
    """The :func:`model` dumped compressed into ``container``."""
    path = tmp_path / f"model{SUFFIXES[container]}"
    zoblib.dump(model(), path, compress=("zstd", 3) if container != "hdf5" else ("zlib", 3))
    return path


@pytest.fixture
def cache_location(tmp_path: Path) -> Path:
    """A real Memory cache, written by a script in its own process: 2 functions, 5 entries."""
    script = tmp_path / "make_cache.py"
    script.write_text(CACHE_SCRIPT)
    location = tmp_path / "cache"
    subprocess.run([sys.executable, str(script), str(location)], check=True, cwd=tmp_path, timeout=120)
    return location
