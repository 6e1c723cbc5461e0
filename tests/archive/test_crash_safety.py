"""A killed, failing or full-disk dump leaves the old archive or the new one, never a mixture."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import zoblib
from zoblib.archive.containers.staging import STAGING_MARK

VERSIONS = 2
ROWS = 2_500  # 2,500 x 2,000 float64: 40 MB per version, so a dump takes a noticeable time


def expected_value(version: int) -> dict[str, object]:
    big = np.full((ROWS, 2_000), float(version))
    return {"version": version, "big": big, "mid": [np.full(20_000, version + i) for i in range(40)]}


def assert_is_one_version(path: Path) -> int:
    value = zoblib.load(path)
    version = value["version"]
    assert version in range(VERSIONS)
    expected = expected_value(version)
    assert np.array_equal(value["big"], expected["big"])
    assert all(np.array_equal(a, b) for a, b in zip(value["mid"], expected["mid"], strict=True))
    return int(version)


WRITER = textwrap.dedent(
    """
    import sys, numpy as np, zoblib
    sys.path.insert(0, {tests!r})
    from test_crash_safety import expected_value
    values = [expected_value(v) for v in range({versions})]
    compress = {compress!r}
    i = 0
    while True:
        zoblib.dump(values[i % {versions}], {path!r}, compress=compress)
        print("dumped", i % {versions}, flush=True)
        i += 1
    """
)


def leftovers(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if STAGING_MARK in name]


@pytest.mark.parametrize("name", ["killed.pkl", "killed.zarr", "killed.h5"])
@pytest.mark.parametrize("compress", [0, 3])
def test_sigkill_at_random_moments_leaves_a_whole_archive(tmp_path: Path, name: str, compress: int) -> None:
    path = tmp_path / name
    zoblib.dump(expected_value(0), path, compress=compress)
    script = WRITER.format(
        tests=str(Path(__file__).parent), versions=VERSIONS, path=str(path), compress=compress
    )
    rng = random.Random(f"{name}{compress}")
    seen_versions = set()
    for _ in range(6):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert child.stdout is not None
        child.stdout.readline()  # at least one complete dump, then kill somewhere in the next ones
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        seen_versions.add(assert_is_one_version(path))
    assert seen_versions  # the archive was readable after every kill
    zoblib.dump(expected_value(1), path, compress=compress)  # a later dump cleans up after the dead
    assert leftovers(tmp_path) == []
    assert assert_is_one_version(path) == 1


def test_leftovers_of_live_processes_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "x.pkl"
    ours = tmp_path / f".x.pkl{STAGING_MARK}{os.getpid()}-feedbeef"
    ours.write_bytes(b"in progress")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    theirs = tmp_path / f".x.pkl{STAGING_MARK}{int(dead.stdout)}-deadbeef"
    theirs.write_bytes(b"abandoned")
    zoblib.dump([1, 2, 3], target)
    assert ours.exists() and not theirs.exists()
    assert zoblib.load(target) == [1, 2, 3]


@pytest.fixture
def tiny_filesystem(mount_tmpfs: Callable[[str], Path]) -> Path:
    """A real 16 MiB tmpfs."""
    return mount_tmpfs("16m")


@pytest.mark.parametrize("name", ["full.pkl", "full.zarr", "full.h5"])
def test_disk_full_raises_and_keeps_the_old_archive(tiny_filesystem: Path, name: str) -> None:
    path = tiny_filesystem / name
    zoblib.dump({"x": np.arange(100_000)}, path)  # 800 kB: fits
    with pytest.raises(zoblib.ArchiveWriteError) as caught:
        zoblib.dump({"x": np.ones(3_000_000)}, path)  # 24 MB: does not
    assert isinstance(caught.value, OSError)
    assert caught.value.errno == errno.ENOSPC
    assert name in str(caught.value) and "untouched" in str(caught.value)
    assert np.array_equal(zoblib.load(path)["x"], np.arange(100_000))
    assert leftovers(tiny_filesystem) == []


# HDF5 writes through libhdf5's own I/O, which os.write does not see: the tmpfs test covers it.
@pytest.mark.parametrize("name", ["injected.pkl", "injected.zarr"])
def test_write_error_midway_keeps_the_old_archive(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / name
    zoblib.dump({"x": np.arange(10)}, path)
    real_write = os.write
    budget = [5 << 20]

    def write_until_full(fd: int, data: object) -> int:
        view = memoryview(data).cast("B")  # type: ignore[arg-type]
        if len(view) > budget[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        budget[0] -= len(view)
        return real_write(fd, view)

    def writev_until_full(fd: int, buffers: list[object]) -> int:
        return sum(write_until_full(fd, buffer) for buffer in buffers)

    monkeypatch.setattr(os, "write", write_until_full)
    monkeypatch.setattr(os, "writev", writev_until_full)
    with pytest.raises(zoblib.ArchiveWriteError, match="No space left"):
        zoblib.dump({"x": np.ones(2_000_000), "marker": uuid.uuid4().hex}, path)
    monkeypatch.undo()
    assert np.array_equal(zoblib.load(path)["x"], np.arange(10))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["durable.pkl", "durable.zarr", "durable.h5"])
def test_data_is_fsynced_before_the_rename_publishes_it(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace, real_rename = os.fsync, os.replace, os.rename

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def publish(real: object) -> object:
        def call(source: str, target: str) -> None:
            if Path(target).name == name:
                events.append("publish")
            real(source, target)  # type: ignore[operator]

        return call

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", publish(real_replace))
    monkeypatch.setattr(os, "rename", publish(real_rename))
    zoblib.dump({"x": np.ones(1_000_000)}, tmp_path / name, fsync=True)
    assert "fsync" in events
    # First publication of a new name: by rename; every fsync of the data comes before it,
    # and the parent directory is fsynced after it.
    first_publish = events.index("publish")
    assert events[:first_publish] and set(events[:first_publish]) == {"fsync"}
    assert events[first_publish + 1 :] == ["fsync"]
    # The default, as numpy's, h5py's and joblib's: no fsync at all (rename still publishes).
    events.clear()
    (tmp_path / "default").mkdir()
    zoblib.dump({"x": np.ones(1_000_000)}, tmp_path / "default" / name)
    assert events == ["publish"]
