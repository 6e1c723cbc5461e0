"""Whether a process still exists: how writers tell leftovers of dead processes from live work."""

from __future__ import annotations

import os


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
