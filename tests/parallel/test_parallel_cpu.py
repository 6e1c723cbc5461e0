"""cpu_count: affinity, cgroup quotas, the override variable, physical cores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoblib.parallel import cpu_count
from zoblib.parallel.cpu import cgroup_cpu_limit, physical_core_count


def test_cpu_count_is_within_the_machine() -> None:
    assert 1 <= cpu_count() <= (os.cpu_count() or 1)
    assert 1 <= cpu_count(only_physical_cores=True) <= cpu_count()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_cpu_count_respects_the_affinity_mask() -> None:
    code = (
        "import os\n"
        "from zoblib.parallel import cpu_count, effective_n_jobs\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "print(cpu_count(), effective_n_jobs(-1), os.cpu_count())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    count, n_jobs, machine = map(int, done.stdout.split())
    assert (count, n_jobs) == (1, 1)
    assert machine >= 1


def test_the_override_variable_caps_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")
    assert cpu_count() == 1
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "not a number")
    assert cpu_count() >= 1


def make_cgroup_v2(root: Path, path: str, limits: dict[str, str]) -> Path:
    proc = root / "proc-cgroup"
    proc.write_text(f"0::{path}\n")
    for folder, value in limits.items():
        target = root / "fs" / folder.strip("/")
        target.mkdir(parents=True, exist_ok=True)
        (target / "cpu.max").write_text(value + "\n")
    return proc


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    proc = make_cgroup_v2(tmp_path, "/a/b", {"/a/b": "150000 100000"})
    assert cgroup_cpu_limit(proc, tmp_path / "fs") == 2  # 1.5 CPUs, rounded up


def test_cgroup_v2_quota_on_an_ancestor(tmp_path: Path) -> None:
    proc = make_cgroup_v2(tmp_path, "/a/b", {"/a/b": "max 100000", "/a": "300000 100000"})
    assert cgroup_cpu_limit(proc, tmp_path / "fs") == 3


def test_cgroup_v2_without_quota(tmp_path: Path) -> None:
    proc = make_cgroup_v2(tmp_path, "/", {"/": "max 100000"})
    assert cgroup_cpu_limit(proc, tmp_path / "fs") is None
    assert cgroup_cpu_limit(tmp_path / "missing", tmp_path / "fs") is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    proc = tmp_path / "proc-cgroup"
    proc.write_text("5:cpuacct,cpu:/docker/abc\n3:memory:/docker/abc\n")
    folder = tmp_path / "fs" / "cpuacct,cpu" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("50000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(proc, tmp_path / "fs") == 1


def test_physical_cores_from_the_topology(tmp_path: Path) -> None:
    # Two cores with two hyper-threads each: CPUs 0 and 2 share core 0, 1 and 3 core 1.
    for cpu, core in [(0, 0), (1, 1), (2, 0), (3, 1)]:
        folder = tmp_path / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "physical_package_id").write_text("0\n")
        (folder / "core_id").write_text(f"{core}\n")
    assert physical_core_count(None, tmp_path) == 2
    assert physical_core_count({0, 2}, tmp_path) == 1
    assert physical_core_count({0, 9}, tmp_path) is None  # unreadable: unknown
