"""Sphinx configuration of zoblib's documentation site.

Build it from the repository's root with ``.venv/bin/python -m sphinx -W --keep-going -b html docs
docs/_build/html``: the user guide is the markdown of ``docs/`` (myst-parser), the API reference is
generated from the docstrings (autosummary and numpydoc), the gallery runs every ``examples/plot_*.py``
(sphinx-gallery), and the benchmark plots are drawn from ``benchmarks/results/*.json``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen: the gallery and the benchmark plots render to files

import zoblib

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

project = "zoblib"
copyright = "zoblib developers"
author = "zoblib developers"
release = zoblib.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "sg_execution_times.rst"]
templates_path = ["_templates"]

# ---- markdown (the user guide pages are GitHub-flavoured markdown) ---------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # links such as parallel.md#writing-a-backend resolve to their heading

# ---- API reference ---------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
numpydoc_show_class_members = False  # autosummary's class template lists them instead
numpydoc_class_members_toctree = False

# ---- gallery ---------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": str(DOCS / "auto_examples"),
    "filename_pattern": r"/plot_",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    # A failing example fails the build (with -W, and also without it).
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "show_memory": False,
    "plot_gallery": "True",
    "run_stale_examples": True,  # run every example on every build: one that broke must fail it
}

# ---- HTML ------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"zoblib {release}"
html_theme_options: dict[str, Any] = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars: dict[str, list[str]] = {"index": [], "getting-started": []}


def _plot_benchmarks(app: Any) -> None:
    """Draw the benchmark plots from the saved results before the pages that show them are read."""
    import plot_results

    plot_results.main(["--out", os.path.join(app.srcdir, "_generated", "benchmarks")])


def setup(app: Any) -> None:
    app.connect("builder-inited", _plot_benchmarks)
