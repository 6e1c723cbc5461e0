"""``zoblib convert IN OUT``: joblib files, pickles, ``.npy``/``.npz`` and archives into an archive.

What IN is, is found from its content, not its name: a ``.npy`` file (its magic), a ``.npz``
(a ZIP of ``.npy`` members only), else whatever :func:`zoblib.load` reads (a zoblib archive in
any container, and the joblib files this zoblib reads), else a plain pickle (one pickle covering
the whole file, naming nothing from joblib). Every kind but numpy's runs the file's pickle.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from typing import Any

import click
import numpy as np

import zoblib
from zoblib.archive.containers import FORMATS, open_reader
from zoblib.archive.guard import reading
from zoblib.archive.reader import ArchiveReader
from zoblib.cli.archive_info import disk_nbytes
from zoblib.cli.tables import echo_json, fail, format_bytes
from zoblib.errors import ArchiveError, ZoblibError
from zoblib.safety.scan import scan_globals

NPY_MAGIC = b"\x93NUMPY"
#: Largest file scanned to tell a plain pickle (its whole content is read).
MAX_SCANNED_PICKLE_NBYTES = 1 << 30

WARNING = (
    "WARNING: loading {path} runs the code its pickle names, as pickle.load and joblib.load do. "
    "Convert only files you trust, or pass --safe."
)


class ConvertError(click.ClickException):
    """A conversion that cannot be done; printed as ``zoblib: <message>``, exit status 1."""

    def show(self, file: Any = None) -> None:
        fail(self.format_message())


def parse_compress(text: str | None) -> Any:
    """``--compress`` as ``dump`` takes it: ``'3'`` -> 3, ``'zlib:3'`` -> ('zlib', 3), ``'lz4'``.

    Examples
    --------
    >>> parse_compress("3"), parse_compress("zlib:3"), parse_compress("lz4"), parse_compress(None)
    (3, ('zlib', 3), 'lz4', 0)
    """
    if text is None:
        return 0
    if text.isdigit():
        return int(text)
    name, _, level = text.partition(":")
    if level:
        if not level.isdigit():
            raise click.BadParameter(f"invalid level {level!r} in {text!r}", param_hint="--compress")
        return (name, int(level))
    return name


def input_kind(path: str) -> str:
    """``'npy'``, ``'npz'``, ``'archive'`` (zoblib's) or ``'pickled'`` (a joblib file, a pickle).

    Loading anything but numpy's two runs a pickle.
    """
    if os.path.isfile(path):
        with open(path, "rb") as file:
            head = file.read(len(NPY_MAGIC))
        if head == NPY_MAGIC:
            return "npy"
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
            if names and all(name.endswith(".npy") for name in names):
                return "npz"
    if _is_archive(path):
        return "archive"
    return "pickled"


def _is_archive(path: str) -> bool:
    """Whether ``path`` opens as a zoblib archive (its root record only: nothing unpickled)."""
    try:
        with reading(path), open_reader(path) as container:
            ArchiveReader(container)
    except (ZoblibError, OSError):
        return False
    return True


def is_plain_pickle(path: str) -> bool:
    """Whether ``path`` holds exactly one pickle, end to end, naming nothing from joblib.

    A joblib file is a pickle followed by its arrays' bytes, and names joblib's wrappers:
    ``pickle.load`` would return the wrappers, not the arrays.
    """
    if not os.path.isfile(path) or os.path.getsize(path) > MAX_SCANNED_PICKLE_NBYTES:
        return False
    with open(path, "rb") as file:
        data = file.read()
    try:
        scan = scan_globals(data)
    except ValueError:
        return False
    names_joblib = any(module.partition(".")[0] == "joblib" for module, _ in scan.named)
    return scan.end == len(data) and not names_joblib


def read_input(path: str, kind: str, *, safe: bool) -> Any:
    """The object stored at ``path``."""
    if kind in ("npy", "npz"):
        try:
            if kind == "npy":
                return np.load(path, allow_pickle=False)
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        except ValueError as exc:  # object arrays: numpy would have to unpickle them
            raise ConvertError(f"cannot read {path!r} without unpickling: {exc}") from exc
    try:
        # Without --safe, load's own default (ZOBLIB_SAFE_LOAD) applies.
        return zoblib.load(path, safe=True if safe else None)
    except ArchiveError as exc:
        if safe or not is_plain_pickle(path):
            raise ConvertError(f"cannot read {path!r}: {exc.problem}{_joblib_hint(path)}") from exc
    except Exception as exc:  # a pickle's own code can fail in any way (a class that moved, ...)
        raise ConvertError(f"cannot read {path!r}: {type(exc).__name__}: {exc}") from exc
    try:
        with open(path, "rb") as file:
            return pickle.load(file)  # the user was warned: this runs the file's code
    except Exception as exc:
        raise ConvertError(f"cannot read {path!r}: {type(exc).__name__}: {exc}") from exc


@click.command()
@click.argument("source", metavar="IN", type=click.Path(exists=True))
@click.argument("target", metavar="OUT", type=click.Path())
@click.option("--compress", metavar="LEVEL|NAME[:LEVEL]", help="As dump's compress: 3, zlib:3, lz4, ...")
@click.option(
    "--format",
    "container",
    type=click.Choice(FORMATS),
    help="The container of OUT (default: from its name: .zarr, .h5/.hdf5, else zip).",
)
@click.option(
    "--safe", is_flag=True, help="Load IN with load(..., safe=True): run nothing outside the allowlist."
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (keys in docs/cli.md).")
def convert(
    source: str,
    target: str,
    compress: str | None,
    container: str | None,
    safe: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Write the object in IN (a joblib file, a pickle, .npy, .npz or an archive) as the archive OUT."""
    if os.path.lexists(target):
        if not force:
            raise ConvertError(f"{target!r} exists: pass --force to replace it")
        if os.path.exists(target) and os.path.samefile(source, target):
            raise ConvertError(f"IN and OUT are the same file ({target!r})")
    level = parse_compress(compress)
    kind = input_kind(source)
    if kind not in ("npy", "npz") and not safe:
        click.secho(WARNING.format(path=source), err=True, fg="red", bold=True)
    try:
        value = read_input(source, kind, safe=safe)
        zoblib.dump(value, target, compress=level, format=container)
    except ZoblibError as exc:
        raise ConvertError(str(exc)) from exc
    nbytes = disk_nbytes(target)
    if as_json:
        echo_json({"source": source, "target": target, "input_kind": kind, "safe": safe, "nbytes": nbytes})
    else:
        click.echo(f"wrote {target} ({format_bytes(nbytes)}) from {source} ({kind})")


def _joblib_hint(path: str) -> str:
    """A note when ``path`` looks like an uncompressed file ``joblib.dump`` wrote.

    Only a hint: joblib's array wrappers are named in the first bytes of its pickle (which its
    arrays' bytes then interrupt, so the pickle cannot be scanned whole).
    """
    if not os.path.isfile(path):
        return ""
    with open(path, "rb") as file:
        head = file.read(4096)
    if head[:1] == b"\x80" and b"joblib.numpy_pickle" in head:
        return " (it looks like a file written by joblib.dump, which this zoblib's load does not read)"
    return ""
