"""Writing aside and renaming into place, so a reader never sees a half-written archive."""

from __future__ import annotations

import json
import os
import secrets
import shutil

from zoblib.errors import ArchiveError

STAGING_MARK = ".zoblib-tmp-"


def staging_path(target: str) -> str:
    """A fresh name beside ``target`` for writing it aside (hidden, tagged with our PID)."""
    parent, name = os.path.split(os.path.abspath(target))
    return os.path.join(parent, f".{name}{STAGING_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def replace_file(staging: str, target: str) -> None:
    """Atomically put the file ``staging`` in place of ``target``."""
    if os.path.isdir(target):
        raise ArchiveError(target, "is a directory; refusing to replace it with a file archive")
    os.replace(staging, target)


def _is_directory_archive(path: str) -> bool:
    try:
        with open(os.path.join(path, "zarr.json"), "rb") as file:
            document = json.load(file)
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "zoblib" in (document.get("attributes") or {})


def replace_directory(staging: str, target: str) -> None:
    """Put the directory ``staging`` in place of ``target``.

    An existing ``target`` is replaced only if it is a zoblib archive (or empty), never a user's
    other directory. It is renamed away first and deleted after the new one is in place.
    """
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    if not os.path.isdir(target) or os.path.islink(target):
        shutil.rmtree(staging, ignore_errors=True)
        raise ArchiveError(target, "exists and is not a directory; refusing to replace it")
    if os.listdir(target) and not _is_directory_archive(target):
        shutil.rmtree(staging, ignore_errors=True)
        raise ArchiveError(target, "is a directory that is not a zoblib archive; refusing to replace it")
    retired = staging_path(target) + "-old"
    os.rename(target, retired)
    os.rename(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
