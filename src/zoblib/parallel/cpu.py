"""How many CPUs this process may really use: affinity, cgroup quotas and an override."""

from __future__ import annotations

import math
import os
from pathlib import Path

#: Environment variable capping the CPU count (the name loky and joblib read).
MAX_CPU_COUNT_ENV = "LOKY_MAX_CPU_COUNT"

_CGROUP_ROOT = Path("/sys/fs/cgroup")
_CPU_TOPOLOGY = Path("/sys/devices/system/cpu")


def cpu_count(only_physical_cores: bool = False) -> int:
    """Return the number of CPUs the current process can use.

    The smallest of: the CPUs in the process's affinity mask (``os.sched_setaffinity``,
    ``taskset``), the CPU quota of its cgroups (Docker's ``--cpus``, Kubernetes limits, rounded
    up) and the ``LOKY_MAX_CPU_COUNT`` environment variable, when set.

    Parameters
    ----------
    only_physical_cores
        Count physical cores rather than hardware threads (hyper-threads). Where the topology
        cannot be read, the logical count is used.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> from zoblib.parallel import cpu_count
    >>> cpu_count() >= 1
    True
    """
    allowed = _allowed_cpus()
    counts = [len(allowed) if allowed else (os.cpu_count() or 1)]
    if only_physical_cores:
        physical = physical_core_count(allowed)
        if physical is not None:
            counts.append(physical)
    quota = cgroup_cpu_limit()
    if quota is not None:
        counts.append(quota)
    override = os.environ.get(MAX_CPU_COUNT_ENV, "").strip()
    if override.isdigit() and int(override) > 0:
        counts.append(int(override))
    return max(1, min(counts))


def _allowed_cpus() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set()


def cgroup_cpu_limit(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = _CGROUP_ROOT) -> int | None:
    """Return the CPU quota of the process's cgroups, rounded up, or None when unlimited.

    Reads cgroup v2 ``cpu.max`` of the process's cgroup and of every ancestor (a limit can sit
    on any of them), or cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``.

    Parameters
    ----------
    proc_cgroup
        The ``/proc/<pid>/cgroup`` file naming the process's cgroups.
    root
        Where the cgroup file systems are mounted.

    Returns
    -------
    int or None
        The smallest quota found, in CPUs, at least 1; None without a quota.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            limits += _v2_limits(root, path)
        elif "cpu" in controllers.split(","):
            limits += _v1_limits(root / controllers, path)
    if not limits:
        return None
    return max(1, math.ceil(min(limits)))


def _ancestors(base: Path, path: str) -> list[Path]:
    parts = [part for part in path.strip("/").split("/") if part]
    return [base.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _v2_limits(root: Path, path: str) -> list[float]:
    limits = []
    for folder in _ancestors(root, path):
        try:
            quota, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
        except OSError:
            continue
        if quota != "max" and period:
            limits.append(int(quota) / int(period))
    return limits


def _v1_limits(root: Path, path: str) -> list[float]:
    limits = []
    # A v1 controller may be mounted under a combined name (cpu,cpuacct); try both.
    bases = [root, root.parent / "cpu", root.parent / "cpu,cpuacct"]
    for base in dict.fromkeys(bases):
        for folder in _ancestors(base, path):
            try:
                quota = int((folder / "cpu.cfs_quota_us").read_text())
                period = int((folder / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue
            if quota > 0 and period > 0:
                limits.append(quota / period)
    return limits


def physical_core_count(cpus: set[int] | None = None, topology: Path = _CPU_TOPOLOGY) -> int | None:
    """Return how many distinct physical cores the given logical CPUs belong to.

    Parameters
    ----------
    cpus
        Logical CPU numbers (default: all those the topology lists).
    topology
        Linux's ``/sys/devices/system/cpu`` folder.

    Returns
    -------
    int or None
        None when the topology cannot be read (not Linux, or a restricted ``/sys``).
    """
    if cpus is None or not cpus:
        cpus = {int(entry.name[3:]) for entry in topology.glob("cpu[0-9]*") if entry.name[3:].isdigit()}
    cores = set()
    for cpu in cpus:
        folder = topology / f"cpu{cpu}" / "topology"
        try:
            package = (folder / "physical_package_id").read_text().strip()
            core = (folder / "core_id").read_text().strip()
        except OSError:
            return None
        cores.add((package, core))
    return len(cores) or None
