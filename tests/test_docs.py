"""Every ```python example in README.md and docs/*.md runs, as a reader would run it: each file's
examples one after another in one namespace, in a fresh Python process in an empty folder."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

#: Run in the fresh process: the document's examples, each compiled under its own name so that a
#: failure's traceback names the document and the example.
RUNNER = """
import re, sys
from pathlib import Path
document = Path(sys.argv[1])
fence = re.compile(sys.argv[2], re.MULTILINE | re.DOTALL)
namespace = {"__name__": "__docs__"}
for number, block in enumerate(fence.findall(document.read_text()), start=1):
    exec(compile(block, f"{document.name}[example {number}]", "exec"), namespace)
"""


def test_documents_have_examples() -> None:
    assert any(FENCE.search(doc.read_text()) for doc in DOCUMENTS)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_examples_run(document: Path, tmp_path: Path) -> None:
    if not FENCE.findall(document.read_text()):
        pytest.skip(f"{document.name} has no python examples")
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(document), FENCE.pattern],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=590,
    )
    assert done.returncode == 0, f"{document.name}:\n{done.stdout}\n{done.stderr}"
