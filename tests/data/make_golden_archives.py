"""Write the golden archives of the current format version (run once per version; commit them).

    python tests/data/make_golden_archives.py

Only the current version's directory is written (``v2/`` for format version 2); earlier ones
were written by the zoblib of their time and are never rewritten.

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


_ARCHIVES = {
    "plain.pkl": {},
    "compressed.pkl": {"compress": 3},
    "plain.zarr": {},
    "zlib.zarr": {"compress": ("zlib", 3)},
    "plain.h5": {},
    "compressed.h5": {"compress": ("gzip", 4)},
}
#: Every golden archive (``v<version>/<name>``) and the dump options that wrote it.
GOLDEN = {f"v{version}/{name}": options for version in (1, 2) for name, options in _ARCHIVES.items()}
OPTIONS = {"inline_threshold": 1024, "pack_threshold": 16 << 10}


def main() -> None:
    import warnings

    import zoblib
    from zoblib.archive.writer import FORMAT_VERSION

    current = f"v{FORMAT_VERSION}/"
    (HERE / current).mkdir(exist_ok=True)
    for name, options in GOLDEN.items():
        if name.startswith(current):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # gzip becomes zlib in HDF5, with a warning
                zoblib.dump(golden_value(), HERE / name, **options, **OPTIONS)
            print("wrote", name, file=sys.stderr)


if __name__ == "__main__":
    main()
