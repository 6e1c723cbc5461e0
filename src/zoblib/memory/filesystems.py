"""Which file system a folder is on: SQLite's locking is not safe on network file systems.

SQLite documents that its locks (POSIX advisory locks, and the shared memory of WAL mode) do not
work reliably over NFS, SMB and similar; the local store then keeps no index and scans.
"""

from __future__ import annotations

import os

#: File system types (``/proc/self/mountinfo``) on which the index is not used.
NETWORK_FILE_SYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "9p",
        "lustre",
        "gpfs",
        "ceph",
        "glusterfs",
        "beegfs",
        "fuse.sshfs",
        "fuse.glusterfs",
        "fuse.cephfs",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.juicefs",
    }
)
MOUNTINFO = "/proc/self/mountinfo"


def file_system_type(path: str) -> str | None:
    """The type of the file system holding ``path`` (its nearest existing folder), or None.

    None where the mount table cannot be read (not Linux).

    Examples
    --------
    >>> file_system_type("/") is None or isinstance(file_system_type("/"), str)
    True
    """
    target = os.path.realpath(path)
    while not os.path.exists(target) and os.path.dirname(target) != target:
        target = os.path.dirname(target)
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="replace") as file:
            lines = file.readlines()
    except OSError:
        return None
    best, best_type = "", None
    for line in lines:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        fs_type = line.split(" - ", 1)[1].split()[0]
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return best_type


def is_network_file_system(path: str) -> bool:
    """Whether ``path`` is on a network file system (where SQLite's locks are unsafe)."""
    fs_type = file_system_type(path)
    return fs_type is not None and fs_type in NETWORK_FILE_SYSTEMS
