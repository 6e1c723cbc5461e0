"""Doctest setup for the docstrings in src/: ``tmp_path`` names a scratch folder, as in tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True, scope="session")
def _doctest_tmp_path(doctest_namespace: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    doctest_namespace["tmp_path"] = tmp_path_factory.mktemp("doctests")


# Doctests are collected from src/ only: the conftest files under tests/ share one module name.
collect_ignore_glob = ["tests/conftest.py", "tests/*/conftest.py"]
