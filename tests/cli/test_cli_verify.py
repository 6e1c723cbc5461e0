"""``zoblib verify``: every checksum, each path reported, non-zero exit on damage."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import numpy as np
from cli_helpers import COMMAND, SUFFIXES, Run, flip_stored_byte

import zoblib


def test_intact_archives(run: Run, archive: Path) -> None:
    result = run("verify", archive)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok       {archive}")
    assert result.stderr == ""  # quiet: no bar when not on a terminal


def test_damage_is_found_and_named(run: Run, tmp_path: Path, container: str) -> None:
    path = tmp_path / f"plain{SUFFIXES[container]}"
    zoblib.dump({"x": np.arange(300_000, dtype=np.float64)}, path)  # uncompressed: memory-mappable
    flip_stored_byte(path, "arrays/x")
    zoblib.load(path, mmap_mode="r")  # a memory map does not see it...
    result = run("verify", path)  # ...verify does
    assert result.returncode == 1
    assert f"DAMAGED  {path}: ChecksumError" in result.stderr
    assert "arrays/x" in result.stderr and "checksum" in result.stderr


def test_several_paths_each_reported(run: Run, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.zob", tmp_path / "bad.zob"
    for path in (good, bad):
        zoblib.dump({"x": np.ones(300_000)}, path)
    flip_stored_byte(bad, "arrays/x")
    result = run("verify", bad, tmp_path / "missing.zob", good)
    assert result.returncode == 1
    assert f"ok       {good}" in result.stdout  # checked although earlier paths failed
    assert f"DAMAGED  {bad}: ChecksumError" in result.stderr
    assert f"DAMAGED  {tmp_path / 'missing.zob'}: ArchiveNotFoundError" in result.stderr

    report = json.loads(run("verify", "--json", good, bad).stdout)
    assert report["ok"] is False
    first, second = report["results"]
    assert first == {
        "path": str(good),
        "ok": True,
        "nodes_checked": 2,
        "nbytes": first["nbytes"],
        "error": None,
        "error_type": None,
    }
    assert first["nbytes"] >= 2_400_000
    assert second["ok"] is False and second["error_type"] == "ChecksumError" and "arrays/x" in second["error"]


def test_truncated_file(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "cut.zob"
    zoblib.dump({"x": np.ones(300_000)}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = run("verify", "--json", path)
    assert result.returncode == 1
    (entry,) = json.loads(result.stdout)["results"]
    assert entry["ok"] is False and entry["error"]


def test_progress_bar_on_request(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "m.zob"
    zoblib.dump({"x": np.ones(300_000)}, path)
    result = run("verify", "--progress", path)
    assert result.returncode == 0, result.stderr
    assert "m.zob" in result.stderr  # the bar's label, drawn on stderr, not stdout
    assert result.stdout.startswith("ok")


def test_console_script(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    zoblib.dump({"x": np.ones(300_000)}, path)
    result = run("verify", path, script=True)
    assert result.returncode == 0 and result.stdout.startswith(f"ok       {path}")


def test_progress_bar_on_a_terminal_for_big_archives(tmp_path: Path) -> None:
    """With stderr a terminal, an archive from 64 MiB gets a bar; a small one does not."""
    big, small = tmp_path / "big.zob", tmp_path / "small.zob"
    zoblib.dump({"x": np.zeros(9 << 20)}, big)  # 72 MiB
    zoblib.dump({"x": np.zeros(10)}, small)
    try:
        drawn = {path.name: _stderr_on_a_terminal(["verify", str(path)]) for path in (big, small)}
    finally:
        big.unlink()
    assert "big.zob" in drawn["big.zob"] and "%" in drawn["big.zob"]
    assert drawn["small.zob"] == ""


def _stderr_on_a_terminal(args: list[str]) -> str:
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run([*COMMAND, *args], stdout=subprocess.PIPE, stderr=terminal, timeout=120)
        os.close(terminal)
        assert result.returncode == 0
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end is closed: all is read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")
    finally:
        os.close(controller)
