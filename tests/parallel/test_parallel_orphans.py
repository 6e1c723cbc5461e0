"""Workers do not outlive their parent: killing it with SIGKILL (no cleanup runs) ends them too."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals and process trees")

#: How long orphaned processes may take to go (the fork server and resource tracker follow
#: the workers, which notice at once with a pidfd and within half a second without).
ORPHAN_DEADLINE_SECONDS = 10.0

PARENT_SCRIPT = """
    import os
    import sys
    import time

    from zoblib.parallel import Parallel, delayed
    from zoblib.parallel.backends.multiprocessing import MultiprocessingBackend


    def announce_then_sleep(i):
        # One write(2) of a whole line: two workers' lines never interleave (print may split).
        os.write(1, f"worker {os.getpid()}\\n".encode())
        time.sleep(120)
        return i


    if __name__ == "__main__":
        backend = MultiprocessingBackend(start_method=sys.argv[1])
        Parallel(n_jobs=2, backend=backend, batch_size=1)(delayed(announce_then_sleep)(i) for i in range(4))
"""

WATCHER_SCRIPT = """
    import os
    import sys
    import time

    from zoblib._processes import exit_when_process_ends

    if sys.argv[2] == "poll" and hasattr(os, "pidfd_open"):
        del os.pidfd_open  # the fallback of systems without pidfds
    exit_when_process_ends(int(sys.argv[1]))
    print("watching", flush=True)
    time.sleep(120)
"""


def _gone(process: psutil.Process) -> bool:
    # A zombie has ended; only its parent (perhaps this container's init) has yet to reap it.
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_until_gone(processes: list[psutil.Process], deadline: float) -> list[psutil.Process]:
    end = time.monotonic() + deadline
    alive = processes
    while alive and time.monotonic() < end:
        time.sleep(0.1)
        alive = [p for p in alive if not _gone(p)]
    return alive


def _kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


@pytest.mark.parametrize("start_method", ["forkserver", "spawn", "fork"])
def test_workers_and_fork_server_end_after_their_parent_is_killed(tmp_path: Path, start_method: str) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(PARENT_SCRIPT))
    parent = subprocess.Popen(
        [sys.executable, str(script), start_method],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    descendants: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        # The tasks print from the workers, whose stdout is the parent's.
        worker_pids = {int(parent.stdout.readline().split()[1]) for _ in range(2)}
        descendants = psutil.Process(parent.pid).children(recursive=True)
        assert worker_pids <= {p.pid for p in descendants}
        if start_method == "forkserver":
            # The workers are the fork server's children, and it is one of the parent's.
            (server,) = {p.parent() for p in descendants if p.pid in worker_pids}
            assert server is not None
            assert server.ppid() == parent.pid
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        left = _wait_until_gone(descendants, ORPHAN_DEADLINE_SECONDS)
        assert not left, f"still running {ORPHAN_DEADLINE_SECONDS}s after the parent died: {left}"
    finally:
        parent.kill()
        parent.wait()
        _kill_all(descendants)


@pytest.mark.parametrize("mode", ["pidfd", "poll"])
def test_exit_when_process_ends_ends_the_watching_process(tmp_path: Path, mode: str) -> None:
    if mode == "pidfd" and not hasattr(os, "pidfd_open"):
        pytest.skip("os.pidfd_open needs Linux")
    watched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    script = tmp_path / "watcher.py"
    script.write_text(textwrap.dedent(WATCHER_SCRIPT))
    watcher = subprocess.Popen(
        [sys.executable, str(script), str(watched.pid), mode], stdout=subprocess.PIPE, text=True
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "watching"
        time.sleep(0.5)
        assert watcher.poll() is None, "the watcher ended while the process it watches runs"
        watched.kill()
        if mode == "poll":
            watched.wait()  # polling cannot tell a zombie from a live process; a pidfd can
        assert watcher.wait(timeout=ORPHAN_DEADLINE_SECONDS) == 1
    finally:
        watched.kill()
        watched.wait()
        watcher.kill()
        watcher.wait()


def test_a_watcher_of_a_process_already_gone_exits_at_once(tmp_path: Path) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    script = tmp_path / "watcher.py"
    script.write_text(textwrap.dedent(WATCHER_SCRIPT))
    watcher = subprocess.run(
        [sys.executable, str(script), str(ended.pid), "pidfd"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert watcher.returncode == 1
    assert "watching" not in watcher.stdout
