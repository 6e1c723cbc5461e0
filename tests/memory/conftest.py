"""Fixtures of the memory tests: a fresh cache folder and a quiet Memory on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from memory_helpers import Counter

from zoblib.memory import Memory


@pytest.fixture
def location(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def memory(location: Path) -> Memory:
    return Memory(location, verbose=0)


@pytest.fixture
def counter() -> Counter:
    return Counter()
