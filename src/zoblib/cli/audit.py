"""``zoblib audit PATH``: the globals an archive's skeleton needs, and which are not allowed."""

from __future__ import annotations

import click

import zoblib
from zoblib.cli.tables import echo_json, fail, render_table
from zoblib.errors import ZoblibError


@click.command()
@click.argument("path", type=click.Path())
@click.option(
    "--trust",
    "trusted",
    multiple=True,
    metavar="NAME",
    help="Also allow this global ('module.QualName'); repeat for more.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (keys in docs/cli.md).")
def audit(path: str, trusted: tuple[str, ...], as_json: bool) -> None:
    """List the globals the skeleton of PATH needs, executing nothing.

    Exit 1 when any of them is outside the allowlist of ``load(..., safe=True)`` (and the
    names given with --trust).
    """
    try:
        report = zoblib.audit(path, trusted=trusted)
    except (ZoblibError, OSError) as exc:
        fail(str(exc))
        raise SystemExit(1) from None
    untrusted = set(report.untrusted)
    if as_json:
        echo_json(
            {
                "path": report.path,
                "safe": bool(report.safe),
                "globals": list(report.globals),
                "untrusted": list(report.untrusted),
                "allow_call": None if report.safe else report.allow_call(),
            }
        )
    else:
        rows = [[name, "UNTRUSTED" if name in untrusted else "allowed"] for name in report.globals]
        click.echo(f"{report.path}: {len(report.globals)} globals, {len(untrusted)} untrusted")
        if rows:
            click.echo(render_table(["GLOBAL", "STATUS"], rows))
        if not report.safe:
            click.echo(f"\nto load it anyway, if you trust it:\n  {report.allow_call()}")
    if not report.safe:
        fail(f"{report.path}: untrusted globals: {', '.join(report.untrusted)}")
        raise SystemExit(1)
