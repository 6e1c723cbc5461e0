"""``zoblib verify PATH...``: check every checksum of each archive and report each one."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import click

from zoblib.archive.containers import open_reader
from zoblib.archive.guard import reading
from zoblib.archive.progress import verify_nodes
from zoblib.archive.reader import ArchiveReader
from zoblib.cli.progress import wants_progress
from zoblib.cli.tables import echo_json, fail, format_bytes
from zoblib.errors import ZoblibError
from zoblib.progress import byte_progress


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking one archive."""

    path: str
    ok: bool
    #: Nodes found intact (all of them when ``ok``; before the damage otherwise).
    nodes_checked: int = 0
    nbytes: int = 0
    error: str | None = None
    error_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as ``--json`` prints it: every field, in order (docs/cli.md)."""
        return dataclasses.asdict(self)


def verify_archive(path: str, *, progress: bool | None = None) -> VerifyResult:
    """Check every stored byte of the archive at ``path``, as :func:`zoblib.verify` does.

    Node after node (a few MiB of memory at a time), with a progress bar on stderr when
    ``progress`` is true (``None``: for big archives on a terminal).
    """
    nodes = nbytes = 0
    try:
        with reading(path), open_reader(path) as container:
            reader = ArchiveReader(container)
            nbytes = sum(node.nbytes for node in reader.nodes.values())
            enabled = wants_progress(progress, nbytes)
            with byte_progress(enabled, os.path.basename(path)) as counter:
                for _ in verify_nodes(reader, counter):
                    nodes += 1
    except (ZoblibError, OSError) as exc:
        # ArchiveError's ``problem`` is its message without the path, which the result names.
        problem = getattr(exc, "problem", None) or str(exc)
        return VerifyResult(path, False, nodes, nbytes, str(problem), type(exc).__name__)
    return VerifyResult(path, True, nodes, nbytes)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Draw a progress bar on stderr (default: for archives from 64 MiB, on a terminal).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (keys in docs/cli.md).")
def verify(paths: tuple[str, ...], progress: bool | None, as_json: bool) -> None:
    """Check every checksum of each archive in PATHS; exit 1 if any is damaged.

    Every path is checked, whatever the others gave; each gets a line: ``ok`` on stdout, the
    file and its problem on stderr.
    """
    results = [verify_archive(path, progress=progress) for path in paths]
    if as_json:
        echo_json({"ok": all(r.ok for r in results), "results": [r.to_json() for r in results]})
    else:
        for result in results:
            if result.ok:
                click.echo(
                    f"ok       {result.path} ({result.nodes_checked} nodes, {format_bytes(result.nbytes)})"
                )
            else:
                fail(f"DAMAGED  {result.path}: {result.error_type}: {result.error}")
    if not all(r.ok for r in results):
        raise SystemExit(1)
