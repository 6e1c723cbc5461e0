"""Write the golden archives of the current format version (run once per version; commit them).

    python tests/data/make_golden_archives.py

Only the current version's archives that do not exist yet are written (in ``v2/`` for format
version 2): every golden archive was written by the zoblib of its time and is never rewritten.
``v2/plain.h5`` and ``v2/compressed.h5`` hold HDF5's first version 2 layout (Fortran-ordered
datasets transposed, datetimes as uint8 bytes); ``v2/logical*.h5`` its logical layout.

``GOLDEN`` archives hold ``golden_value()``, ``LOGICAL_HDF5`` ones ``hdf5_layout_value()``
(``expected_value(name)`` says which); tests/archive/test_golden.py and the spec reader's tests
load them with every later zoblib, so that files written by a released format keep loading.
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


def hdf5_layout_value() -> dict[str, Any]:
    """``golden_value()`` and arrays that HDF5's logical layout stores in their own form: each
    its own dataset (``LOGICAL_OPTIONS``), Fortran-ordered ones in several chunks when compressed."""
    rng = np.random.default_rng(20261202)
    return {
        **golden_value(),
        "fortran_2d": np.asfortranarray(rng.standard_normal((60, 45)).round(3)),
        "fortran_3d": np.asfortranarray(rng.integers(-500, 500, size=(9, 10, 12)).astype(">i4")),
        "stamps_ns": np.datetime64("2026-12-02T10:00", "ns") + np.arange(700) * 1_234_567,
        "stamps_ns_fortran": np.asfortranarray(np.arange(600).astype("M8[ns]").reshape(20, 30)),
        "durations_s": np.arange(700).astype("m8[s]") * 7,
        "generic_dates": np.array(np.arange(400), dtype="M8"),
        "words": np.array(["zoblib", "hdf5", "", "\u00e9t\u00e9"] * 100),
        "raw_void": np.frombuffer(rng.bytes(7 * 500), dtype="V7"),
        "record": np.array(
            [(i, (i / 4, b"ab")) for i in range(300)],
            dtype=[("a", "<i2"), ("b", [("c", "<f8"), ("d", "S3")])],
        ),
        "record_of_words": np.array(
            [(f"w{i}", i) for i in range(300)], dtype=[("w", "<U4"), ("t", "<M8[s]")]
        ),
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
#: HDF5 archives in the logical layout (format version 2) and the dump options that wrote them.
LOGICAL_HDF5 = {
    "v2/logical.h5": {},
    "v2/logical_zstd.h5": {"compress": "zstd"},
    "v2/logical_blosc.h5": {"compress": 3},
}
LOGICAL_OPTIONS = {"inline_threshold": 256, "pack_threshold": 1024, "chunk_nbytes": 2048}
#: Every golden archive of every kind.
ALL_GOLDEN = sorted([*GOLDEN, *LOGICAL_HDF5])


def expected_value(name: str) -> dict[str, Any]:
    """The value golden archive ``name`` holds."""
    return hdf5_layout_value() if name in LOGICAL_HDF5 else golden_value()


def dump_options(name: str) -> dict[str, Any]:
    """Every option golden archive ``name`` was dumped with."""
    return {**LOGICAL_HDF5[name], **LOGICAL_OPTIONS} if name in LOGICAL_HDF5 else {**GOLDEN[name], **OPTIONS}


def main() -> None:
    import warnings

    import zoblib
    from zoblib.archive.writer import FORMAT_VERSION

    current = f"v{FORMAT_VERSION}/"
    (HERE / current).mkdir(exist_ok=True)
    for name in ALL_GOLDEN:
        if name.startswith(current) and not (HERE / name).exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # gzip becomes zlib in HDF5, with a warning
                zoblib.dump(expected_value(name), HERE / name, **dump_options(name))
            print("wrote", name, file=sys.stderr)


if __name__ == "__main__":
    main()
