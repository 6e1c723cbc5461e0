"""The temporary folder of one parallel call: where it goes, and that it always goes away.

Each call that may pass arrays by reference gets a folder named
``zoblib_parallel_<pid>_<random>`` under a root chosen by :func:`temp_root`. It is removed when
the call ends (even by an exception), at interpreter exit for calls still open, and, if the
process died first, by the next call in any process, which removes every folder whose PID is
no longer alive.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import uuid

#: Environment variable naming the root folder for temporary arrays.
TEMP_FOLDER_ENV = "ZOBLIB_TEMP_FOLDER"
#: RAM-backed file system used when it has at least this much free room.
SHARED_MEMORY_ROOT = "/dev/shm"
SHARED_MEMORY_MIN_FREE = 2 * 1024**3
PREFIX = "zoblib_parallel_"

_open_folders: set[str] = set()
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

    Returns
    -------
    str
        The new folder's path; :func:`remove_call_folder` removes it.
    """
    global _atexit_registered
    remove_leftovers(root)
    path = os.path.join(root, f"{PREFIX}{os.getpid()}_{uuid.uuid4().hex[:12]}")
    os.mkdir(path, 0o700)
    with _lock:
        _open_folders.add(path)
        if not _atexit_registered:
            atexit.register(_remove_open_folders)
            _atexit_registered = True
    return path


def remove_call_folder(path: str) -> None:
    """Delete a call folder and everything in it (mapped files stay readable until unmapped)."""
    with _lock:
        _open_folders.discard(path)
    shutil.rmtree(path, ignore_errors=True)


def remove_leftovers(root: str) -> list[str]:
    """Delete the call folders under ``root`` whose owning process is dead.

    Returns
    -------
    list of str
        The folders removed.
    """
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        pid_text = entry.name[len(PREFIX) :].partition("_")[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":
        # On Windows os.kill(pid, 0) would terminate the process: never probe there.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:
        return True  # cannot tell (e.g. on Windows): keep the folder
    return True


def _remove_open_folders() -> None:
    with _lock:
        folders = list(_open_folders)
        _open_folders.clear()
    for path in folders:
        shutil.rmtree(path, ignore_errors=True)
