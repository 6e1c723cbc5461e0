"""The ``zoblib`` command group: it only gathers the commands, each in a module of its own."""

from __future__ import annotations

import click

from zoblib._version import __version__
from zoblib.cli.audit import audit
from zoblib.cli.cache import cache
from zoblib.cli.convert import convert
from zoblib.cli.inspect import inspect
from zoblib.cli.verify import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zoblib")
def main() -> None:
    """Inspect, verify, audit and convert zoblib archives; look after Memory caches.

    Every command takes --json for scripts. Exit status: 0 success, 1 a damaged or untrusted
    file or a failed action, 2 a usage error.
    """


for command in (inspect, verify, audit, convert, cache):
    main.add_command(command)
