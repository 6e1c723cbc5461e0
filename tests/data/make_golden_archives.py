"""Write the golden archives of format version 1 (run once per format version; commit the files).

    python tests/data/make_golden_archives.py

The archives hold ``golden_value()``; tests/archive/test_golden.py loads them with every later
zoblib, so that files written by a released format version keep loading.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent


def golden_value() -> dict[str, Any]:
    """A small object graph touching every part of the format (deterministic)."""
    rng = np.random.default_rng(20261122)
    own = rng.standard_normal((300, 40))  # 96 kB: its own node with inline_threshold below
    fortran = np.asfortranarray(rng.integers(-1000, 1000, size=(50, 30)).astype(">i4"))
    return {
        "own": own,
        "same_again": own,
        "fortran_big_endian": fortran,
        "packed": [np.arange(n, dtype=np.float32) for n in (100, 200, 300)],
        "datetimes": np.arange(64).astype("datetime64[s]"),
        "structured": np.zeros(20, dtype=[("a", "<i2"), ("b", [("c", "<f8"), ("d", "S3")])]),
        "masked": np.ma.masked_array(np.arange(10.0), mask=[0, 1] * 5),
        "inline": np.arange(5),
        "python": {"text": "zoblib", "numbers": [1, 2.5, 3 + 4j], "nested": ({"x"}, b"bytes")},
    }


GOLDEN = {
    "v1/plain.pkl": {},
    "v1/compressed.pkl": {"compress": 3},
    "v1/plain.zarr": {},
    "v1/zlib.zarr": {"compress": ("zlib", 3)},
    "v1/plain.h5": {},
    "v1/compressed.h5": {"compress": ("gzip", 4)},
}
OPTIONS = {"inline_threshold": 1024, "pack_threshold": 16 << 10}


def main() -> None:
    import zoblib

    for name, options in GOLDEN.items():
        zoblib.dump(golden_value(), HERE / name, **options, **OPTIONS)
        print("wrote", name, file=sys.stderr)


if __name__ == "__main__":
    main()
