"""Write the golden cache of the first ``Memory`` layout: ``<func>/<args id>/`` entries.

    python tests/data/make_old_memory_cache.py

Written once, by the zoblib of that layout (before entries moved to hash-prefix folders,
``<func>/<2 hex>/<args id>/``), into ``old_memory_cache/``; never rewritten: delete it first to
write it again, with a zoblib of the old layout only, such as commit bd59c65's::

    git archive bd59c65 src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src python tests/data/make_old_memory_cache.py

tests/memory/test_memory_layout.py copies it and checks that today's zoblib hits, lists,
indexes, prunes and clears its entries.

The cached functions live in this module (their folders are ``make_old_memory_cache/<name>``):
the test imports it, so their code digests, and so the argument hashes, match.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
CACHE = HERE / "old_memory_cache"


def square(x: int) -> int:
    return x * x


def short_list(n: int) -> list[int]:
    return list(range(n))


def small_array(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64)


#: (function, arguments) of every entry, and the hits each got after it was written.
CALLS: list[tuple[Any, int, int]] = [
    (square, 3, 2),
    (square, 4, 0),
    (square, 5, 1),
    (short_list, 5, 0),
    (small_array, 10, 3),
]


def write(location: Path) -> None:
    from zoblib.memory import Memory

    memory = Memory(location, verbose=0)
    for func, argument, hits in CALLS:
        cached = memory.cache(func)
        cached(argument)
        for _ in range(hits):
            cached(argument)
    zipped = Memory(location, verbose=0, backend_options={"container": "zip"})
    zipped.cache(short_list)(7)  # one entry as a ZIP archive (output.pkl)
    # Memory leaves a ``.gitignore`` of ``*`` in its cache folder: a golden cache is committed.
    (location / ".gitignore").unlink()


if __name__ == "__main__":
    if CACHE.exists():
        sys.exit(f"{CACHE} exists: golden caches are never rewritten")
    sys.path.insert(0, str(HERE))
    import make_old_memory_cache  # the functions' module is their name, not __main__

    make_old_memory_cache.write(CACHE)
