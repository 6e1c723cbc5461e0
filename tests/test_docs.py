"""Every ```python example in README.md and docs/*.md runs (each file in one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_documents_have_examples() -> None:
    assert any(FENCE.search(doc.read_text()) for doc in DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_examples_run(document: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = FENCE.findall(document.read_text())
    if not blocks:
        pytest.skip(f"{document.name} has no python examples")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(blocks, start=1):
        code = compile(block, f"{document.name}[example {number}]", "exec")
        exec(code, namespace)
