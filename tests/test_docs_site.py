"""The documentation site: the API reference lists every public name, and the whole site (user
guide, API pages, format specification, benchmark plots and the executed gallery) builds with
Sphinx's warnings as errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import zoblib

ROOT = Path(__file__).resolve().parents[1]
API_PAGES = sorted((ROOT / "docs" / "api").glob("*.rst"))
#: What the site's build reads besides docs/: the gallery, the included spec and benchmark pages.
SOURCES = ("docs", "examples", "format_spec", "benchmarks")
#: Outputs of an earlier local build, which a fresh build must not reuse.
BUILD_OUTPUTS = ("_build", "_generated", "auto_examples", "generated", "sg_execution_times.rst", "_scratch")


def listed_names() -> set[str]:
    """The names the API pages document: autosummary entries and ``.. data::`` directives."""
    names: set[str] = set()
    for page in API_PAGES:
        in_autosummary = False
        for line in page.read_text().splitlines():
            if line.startswith(".. autosummary::"):
                in_autosummary = True
            elif in_autosummary and line.startswith("   ") and not line.strip().startswith(":"):
                names.add(line.strip().removeprefix("zoblib."))
            elif line and not line.startswith(" "):
                in_autosummary = False
            directive = re.match(r"\.\. (?:data|function|class|exception):: (\S+)", line)
            if directive:
                names.add(directive.group(1).removeprefix("zoblib."))
    return names


def test_api_reference_lists_every_public_name() -> None:
    missing = sorted(set(zoblib.__all__) - listed_names())
    assert not missing, f"add these names of zoblib.__all__ to docs/api/index.rst: {missing}"


def test_api_reference_lists_only_public_names() -> None:
    unknown = sorted(listed_names() - set(zoblib.__all__))
    assert not unknown, f"docs/api/ lists names that zoblib.__all__ does not have: {unknown}"


def test_gallery_has_enough_examples() -> None:
    examples = sorted((ROOT / "examples").glob("plot_*.py"))
    assert len(examples) >= 8, [e.name for e in examples]


@pytest.mark.timeout(600)
def test_site_builds_without_warnings(tmp_path: Path) -> None:
    """``sphinx -W --keep-going`` on a copy of the sources: any warning (a broken reference, a
    docstring numpydoc cannot parse, a missing page) or a failing gallery example fails it."""
    for name in SOURCES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns(*BUILD_OUTPUTS))
    output = tmp_path / "html"
    environment = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(output)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=environment,
        timeout=580,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-10000:]
    for page in ("index", "getting-started", "api/index", "format/v2", "benchmarks", "auto_examples/index"):
        assert (output / f"{page}.html").is_file(), page
    for name in zoblib.__all__:
        if name != "__version__":
            assert (output / "api" / "generated" / f"zoblib.{name}.html").is_file(), name
    # Every gallery example ran and drew its plot; the benchmark plots were drawn from the results.
    for example in (tmp_path / "examples").glob("plot_*.py"):
        assert (output / "_images" / f"sphx_glr_{example.stem}_001.png").is_file(), example.name
    assert (output / "_images" / "archive-vs-joblib.png").is_file()
    assert (output / "_images" / "archive-layout.svg").is_file()
