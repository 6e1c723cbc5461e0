"""The README's demo runs on a fresh process and prints zoblib next to joblib, row by row."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_prints_zoblib_next_to_joblib() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zoblib.demo", "--size-mib", "32"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines() if line.startswith("   ")]
    rows = {line.split("  ")[0]: line for line in lines}
    for label in ("dump", "load", "load compress=3", "dump compress=3"):
        line = rows[label]
        # Two timings with throughputs (zoblib, then joblib) and the speedup, on one row.
        assert len(re.findall(r"\d+\.\d+ s +\d+\.\d+ GB/s", line)) == 2, line
        assert re.search(r"\d+\.\d+x", line), line
    for label in ("dump", "dump compress=3"):
        assert re.search(r"MiB / \d+\.\d MiB", rows[label]), rows[label]  # both files' sizes
    # A memory map or a lazy open moves no data: a time, no throughput, no file size.
    for label in ("load, mmap_mode='r'", "lazy open compress=3", "lazy slice of 10 rows"):
        assert "GB/s" not in rows[label] and "MiB" not in rows[label], rows[label]
    assert re.search(r"lazy slice of 10 rows .*—", rows["lazy slice of 10 rows"])
