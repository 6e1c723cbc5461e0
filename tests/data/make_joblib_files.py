"""Write the golden joblib files of tests/data/joblib/ with the joblib release of the test extra.

Run from the repository root, with joblib installed (``pip install -e ".[test]"``)::

    .venv/bin/python tests/data/make_joblib_files.py

One file per compressor joblib writes, plus an uncompressed file in each pickle protocol that
matters, a file written to a stream that cannot tell its position (joblib then writes its
arrays without alignment padding), and a plain pickle (joblib's file of an object without
arrays). tests/joblib_files/test_golden_files.py loads them, without joblib, and compares them
with :func:`golden_value`, which needs only numpy: keep it deterministic and unchanged (the
files already written must keep matching it).
"""

from __future__ import annotations

import io
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

FOLDER = Path(__file__).resolve().parent / "joblib"
JOBLIB_VERSION = "1.6.0"

#: File name -> the ``compress`` argument given to ``joblib.dump``.
COMPRESSED = {
    "zlib.pkl": ("zlib", 3),
    "gzip.pkl": ("gzip", 3),
    "bz2.pkl": ("bz2", 3),
    "lzma.pkl": ("lzma", 3),
    "xz.pkl": ("xz", 3),
    "lz4.pkl": ("lz4", 3),
}
#: File name -> pickle protocol of an uncompressed file.
UNCOMPRESSED = {"protocol2.pkl": 2, "protocol4.pkl": 4, "protocol5.pkl": 5}
STREAMED = "unpadded.pkl"  # written to a stream without tell(): no alignment padding
PLAIN_PICKLE = "plain-pickle.pkl"


def golden_value() -> dict[str, Any]:
    """The object every golden file holds (numpy only, deterministic)."""
    rng = np.random.default_rng(20261202)
    other_order = ">" if sys.byteorder == "little" else "<"
    return {
        "float64": rng.standard_normal(64),
        "int8": np.arange(-20, 20, dtype=np.int8),
        "uint64": np.array([0, 1, 2**64 - 1], dtype=np.uint64),
        "complex": (rng.standard_normal(8) + 1j).astype(np.complex64),
        "bool": rng.random(17) > 0.5,
        "unicode": np.array(["été", "b", ""], dtype="<U4"),
        "bytes": np.array([b"ab", b"c"], dtype="S2"),
        "datetime": np.array(["2026-12-02T04:22", "NaT"], dtype="datetime64[m]"),
        "other-byte-order": np.arange(6, dtype=f"{other_order}i4"),
        "structured": np.array(
            [(1, 2.5, b"x"), (3, -1.0, b"y")], dtype=[("a", "<i2"), ("b", "<f8"), ("c", "S1")]
        ),
        "fortran": np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
        "0-d": np.array(7.5),
        "empty": np.zeros((0, 3)),
        "object": np.array([1, "two", {"three": 3}, None], dtype=object),
        "nested": {"list": [np.arange(3), (np.ones(2, dtype=np.int16), "text")], "set": {1, 2}},
        "text": "C'est l'été !",
        "raw": bytes(range(256)),
    }


class _Stream(io.RawIOBase):
    """A stream that cannot tell its position, as a socket's: joblib then writes no padding."""

    def __init__(self) -> None:
        self.written = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.written += data
        return len(data)

    def tell(self) -> int:
        raise io.UnsupportedOperation("a stream has no position")


def main() -> None:
    import joblib  # only the writing needs joblib

    if joblib.__version__ != JOBLIB_VERSION:
        raise SystemExit(
            f"these files are joblib {JOBLIB_VERSION}'s; joblib {joblib.__version__} is installed"
        )
    FOLDER.mkdir(exist_ok=True)
    value = golden_value()
    for name, compress in COMPRESSED.items():
        joblib.dump(value, FOLDER / name, compress=compress)
    for name, protocol in UNCOMPRESSED.items():
        joblib.dump(value, FOLDER / name, protocol=protocol)
    stream = _Stream()
    joblib.dump(value, stream)
    (FOLDER / STREAMED).write_bytes(bytes(stream.written))
    with open(FOLDER / PLAIN_PICKLE, "wb") as file:
        pickle.dump({"no": "arrays", "numbers": [1, 2.5, 3j]}, file, protocol=2)
    total = sum(os.path.getsize(path) for path in FOLDER.iterdir())
    print(f"wrote {len(list(FOLDER.iterdir()))} files, {total} bytes, in {FOLDER}")


if __name__ == "__main__":
    main()
