"""Hashing of Python objects, fast on numpy arrays: ``zoblib.hash`` and the array digest.

Modules: ``api`` (``hash``), ``pickler`` (the canonical pickler behind it), ``arrays`` (how an
array contributes: ``array_digest``, the one function the archive writer also calls) and
``algorithms`` (the accepted ``hash_name`` values).
"""

from __future__ import annotations

from zoblib.hashing.algorithms import DEFAULT_HASH_NAME, HASH_ALGORITHMS
from zoblib.hashing.api import hash
from zoblib.hashing.arrays import DIGEST_ATTRIBUTE, array_digest

__all__ = ["DEFAULT_HASH_NAME", "DIGEST_ATTRIBUTE", "HASH_ALGORITHMS", "array_digest", "hash"]
