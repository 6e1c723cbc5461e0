"""``python -m zoblib``: the ``zoblib`` command."""

from __future__ import annotations

from zoblib.cli.main import main

if __name__ == "__main__":
    main(prog_name="zoblib")
