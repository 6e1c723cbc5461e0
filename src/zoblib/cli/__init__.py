"""The ``zoblib`` command: one module per command group, a thin :mod:`~zoblib.cli.main`.

The commands only parse, call zoblib's functions and print: tables for people, ``--json``
(stable keys, documented in ``docs/cli.md``) for scripts. Run ``zoblib --help`` or
``python -m zoblib --help``.
"""

from __future__ import annotations

from zoblib.cli.main import main

__all__ = ["main"]
