"""``docs/cli.md`` shows what the commands print: its examples, rerun, still print it.

The doc's ``console`` blocks are not executed by ``tests/test_docs.py`` (it runs ``python``
blocks); this reruns the deterministic ones. Sizes of compressed data and the versions that
wrote the archive depend on the machine's libraries, so those cells are not compared.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from cli_helpers import COMMAND

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)


def block(starting: str) -> list[str]:
    """The lines of the doc's console block whose first line is ``starting``."""
    for text in CONSOLE.findall(DOC.read_text()):
        if text.startswith(starting):
            return text.splitlines()
    raise AssertionError(f"docs/cli.md has no console block starting with {starting!r}")


def zoblib(*args: str, cwd: Path) -> str:
    environment = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run([*COMMAND, *args], cwd=cwd, capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help(tmp_path: Path) -> None:
    expected = block("$ zoblib --help\n")[1:]
    assert zoblib("--help", cwd=tmp_path).splitlines() == expected


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_inspect_table(tmp_path: Path) -> None:
    setup = "\n".join(block('$ python -c "')).removeprefix('$ python -c "').rstrip().removesuffix('"')
    subprocess.run([sys.executable, "-c", setup], cwd=tmp_path, check=True)
    expected = block("$ zoblib inspect model.zob\n")[1:]
    printed = zoblib("inspect", "model.zob", cwd=tmp_path).splitlines()
    assert len(printed) == len(expected)
    assert printed[0].startswith("model.zob: zoblib archive (zip, ") and expected[0].startswith(
        printed[0][:30]
    )
    assert printed[1].startswith("written by zoblib ") and expected[1].startswith("written by zoblib ")
    assert printed[2] == expected[2]  # what is stored alone, packed and inline
    # Both tables, cell by cell, but for the compressed sizes and ratios.
    masked_columns = {"NAME": (5, 7), "NODE": (6, 8)}  # STORED and RATIO of each table
    table = "NAME"
    for got, want in zip(printed[3:], expected[3:], strict=True):
        got_cells, want_cells = cells(got), cells(want)
        assert len(got_cells) == len(want_cells), (got, want)
        table = want_cells[0] if want_cells[0] in masked_columns else table
        masked = masked_columns[table] if len(want_cells) == 9 else ()
        for index, (g, w) in enumerate(zip(got_cells, want_cells, strict=True)):
            if index not in masked or w in ("STORED", "RATIO"):
                assert g == w, (got, want)
