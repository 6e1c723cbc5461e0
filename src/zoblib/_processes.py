"""Whether a process still exists, and ending a worker when the process it serves is gone.

Writers use :func:`process_alive` to tell leftovers of dead processes from live work; worker
pools use :func:`exit_when_process_ends` so that killing their parent (``SIGKILL`` included,
which runs no cleanup) does not leave workers running forever.
"""

from __future__ import annotations

import os
import select
import threading
import time

#: How often a worker checks on its parent where the OS cannot notify it (no pidfd).
PARENT_POLL_SECONDS = 0.5
#: The exit code of a worker that ended because its parent died.
ORPHAN_EXIT_CODE = 1


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (``True`` when it cannot be told)."""
    if pid == os.getpid() or os.name == "nt":
        # On Windows os.kill(pid, 0) would terminate the process: never probe there.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else (EPERM), or cannot be told
    return True


def exit_when_process_ends(pid: int) -> None:
    """End this process (``os._exit``) soon after process ``pid`` ends; return at once.

    A daemon thread waits on a pidfd of ``pid`` (Linux 5.3+), which names that very process
    (a reused pid cannot fool it) and wakes the thread the moment it ends, zombie or reaped.
    Elsewhere it polls ``pid`` every :data:`PARENT_POLL_SECONDS`. If ``pid`` already ended
    this process exits right away. Nothing happens on Windows, where a process cannot be
    probed without being terminated.

    ``PR_SET_PDEATHSIG`` would not do: it watches the process that forked us, which under the
    ``'forkserver'`` start method is the fork server, not the process that gives us work.
    """
    if os.name == "nt" or pid == os.getpid():
        return
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(ORPHAN_EXIT_CODE)
    except (AttributeError, OSError):  # not Linux, an old kernel, or a seccomp filter
        watcher = threading.Thread(target=_poll_process, args=(pid, os.getppid()), daemon=True)
    else:
        watcher = threading.Thread(target=_wait_on_pidfd, args=(pidfd,), daemon=True)
    watcher.name = "zoblib-parent-watch"
    watcher.start()


def _wait_on_pidfd(pidfd: int) -> None:
    # A pidfd becomes readable when its process ends; nothing is ever read from it.
    select.select([pidfd], [], [])
    os._exit(ORPHAN_EXIT_CODE)


def _poll_process(pid: int, parent: int) -> None:
    # A dead process that nobody reaped yet still answers kill(pid, 0); our own parent's death
    # shows at once, though, as we are handed to another process then.
    while process_alive(pid) and os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(ORPHAN_EXIT_CODE)
