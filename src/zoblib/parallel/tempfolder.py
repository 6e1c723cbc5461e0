"""The temporary folder of one parallel call: where it goes, and that it always goes away.

Each call that may pass arrays by reference gets a folder named
``zoblib_parallel_<pid>_<host>_<random>`` under a root chosen by :func:`temp_root`. It is
removed when the call ends (even by an exception), at interpreter exit for calls still open,
and, if the process died first, by the next call in any process of the same host, which removes
every folder whose PID is no longer alive. ``<host>`` keeps a machine sharing the folder (over
NFS, say) from judging another machine's PIDs.
"""

from __future__ import annotations

import atexit
import hashlib
import math
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid

from zoblib._processes import process_alive

#: Environment variable naming the root folder for temporary arrays.
TEMP_FOLDER_ENV = "ZOBLIB_TEMP_FOLDER"
#: RAM-backed file system used when it has at least this much free room.
SHARED_MEMORY_ROOT = "/dev/shm"
SHARED_MEMORY_MIN_FREE = 2 * 1024**3
PREFIX = "zoblib_parallel_"
#: Look for leftovers of dead processes in a root at most this often (seconds): a big /tmp
#: takes a while to list.
LEFTOVER_SCAN_INTERVAL = 60.0

_HOST = hashlib.sha1(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]

_open_folders: set[str] = set()
_last_scan: dict[str, float] = {}
_lock = threading.Lock()
_atexit_registered = False


def temp_root(temp_folder: str | os.PathLike[str] | None = None) -> str:
    """Return the folder under which call folders are made.

    Parameters
    ----------
    temp_folder
        An explicit choice; otherwise ``$ZOBLIB_TEMP_FOLDER``, then ``/dev/shm`` when it has at
        least 2 GiB free, then the system's temporary folder.

    Returns
    -------
    str
        An existing folder.
    """
    if temp_folder is not None:
        root = os.fspath(temp_folder)
        os.makedirs(root, exist_ok=True)
        return root
    from_env = os.environ.get(TEMP_FOLDER_ENV)
    if from_env:
        os.makedirs(from_env, exist_ok=True)
        return from_env
    if os.path.isdir(SHARED_MEMORY_ROOT) and os.access(SHARED_MEMORY_ROOT, os.W_OK):
        try:
            if shutil.disk_usage(SHARED_MEMORY_ROOT).free >= SHARED_MEMORY_MIN_FREE:
                return SHARED_MEMORY_ROOT
        except OSError:
            pass
    return tempfile.gettempdir()


def create_call_folder(root: str) -> str:
    """Make a new call folder under ``root``, after removing those left by dead processes.

    The leftovers are looked for at most once every ``LEFTOVER_SCAN_INTERVAL`` seconds per
    root.

    Returns
    -------
    str
        The new folder's path; :func:`remove_call_folder` removes it.
    """
    global _atexit_registered
    now = time.monotonic()
    if now - _last_scan.get(root, -math.inf) >= LEFTOVER_SCAN_INTERVAL:
        _last_scan[root] = now
        remove_leftovers(root)
    path = os.path.join(root, call_folder_name(os.getpid()))
    os.mkdir(path, 0o700)
    with _lock:
        _open_folders.add(path)
        if not _atexit_registered:
            atexit.register(_remove_open_folders)
            _atexit_registered = True
    return path


def call_folder_name(pid: int) -> str:
    """Return a new, unique name for a call folder of process ``pid`` on this host."""
    return f"{PREFIX}{pid}_{_HOST}_{uuid.uuid4().hex[:12]}"


def remove_call_folder(path: str) -> None:
    """Delete a call folder and everything in it (mapped files stay readable until unmapped)."""
    with _lock:
        _open_folders.discard(path)
    shutil.rmtree(path, ignore_errors=True)


def remove_leftovers(root: str) -> list[str]:
    """Delete the call folders under ``root`` made on this host by processes now dead.

    Returns
    -------
    list of str
        The folders removed.
    """
    removed: list[str] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        pid_text, _, rest = entry.name[len(PREFIX) :].partition("_")
        host = rest.partition("_")[0]
        if pid_text.isdigit() and host == _HOST and not process_alive(int(pid_text)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _remove_open_folders() -> None:
    with _lock:
        folders = list(_open_folders)
        _open_folders.clear()
    for path in folders:
        shutil.rmtree(path, ignore_errors=True)
