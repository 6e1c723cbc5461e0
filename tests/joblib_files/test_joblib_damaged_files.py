"""Truncated and damaged joblib files: each load raises ``ArchiveCorruptedError`` naming the
file; never a bare ``UnpicklingError``, ``EOFError`` or ``zlib.error``, never a crash.

The damaged files are loaded in a fresh interpreter (a crash there fails the test, rather than
ending the session); it reports each case's outcome as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from joblib_helpers import COMPRESSORS, run_python

#: Loads every damaged variant of one file; prints {case: outcome}. The outcome is "corrupted"
#: (ArchiveCorruptedError naming the file), "archive-error" (another ArchiveError naming it),
#: "loaded", or "other: <type>: <message>" (a failure of the test).
_LOAD_DAMAGED = r"""
import json, os, sys, warnings
import zoblib

source, folder = sys.argv[1], sys.argv[2]
with open(sys.argv[3]) as listed:
    cases = json.load(listed)
data = open(source, "rb").read()
warnings.simplefilter("ignore")
outcomes = {}
for case in cases:
    kind, position, mmap_mode = case["kind"], case["position"], case["mmap_mode"]
    if kind == "truncate":
        damaged = data[:position]
    else:
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        damaged = bytes(damaged)
    path = os.path.join(folder, f"{kind}-{position}-{mmap_mode}.pkl")
    with open(path, "wb") as file:
        file.write(damaged)
    try:
        zoblib.load(path, mmap_mode=mmap_mode)
        outcome = "loaded"
    except zoblib.ArchiveError as exc:
        named = path in str(exc)
        if isinstance(exc, zoblib.ArchiveCorruptedError) and named:
            outcome = "corrupted"
        elif named:
            outcome = "archive-error"
        else:
            outcome = f"other: {type(exc).__name__} without the path: {exc}"
    except BaseException as exc:
        outcome = f"other: {type(exc).__name__}: {exc}"
    if os.path.getsize(path) != len(damaged):
        outcome = "other: the file changed size"
    os.remove(path)
    outcomes[f"{kind}@{position}/{mmap_mode}"] = outcome
print(json.dumps(outcomes))
"""

#: Compressed streams whose checksum covers every byte (lzma's "alone" format and LZ4 frames
#: as joblib writes them have none: a flipped byte may go unseen, as with no compression).
CHECKSUMMED = ("zlib", "gzip", "bz2", "xz")


def _value() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal(300),
        "f": np.asfortranarray(rng.integers(0, 100, (6, 4))),
        "object": np.array([1, "a", None], dtype=object),
        "text": "hello",
        "list": [np.arange(5), {"k": np.ones(3, dtype=">f4")}],
    }


def _run(source: Path, folder: Path, cases: list[dict[str, Any]]) -> dict[str, str]:
    listed = folder / "cases.json"
    listed.write_text(json.dumps(cases))
    done = run_python(_LOAD_DAMAGED, str(source), str(folder), str(listed))
    assert done.returncode == 0, f"the loading process failed ({done.returncode}):\n{done.stderr[-3000:]}"
    outcomes: dict[str, str] = json.loads(done.stdout)
    others = {case: outcome for case, outcome in outcomes.items() if outcome.startswith("other")}
    assert not others, others
    return outcomes


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_every_truncation_of_an_uncompressed_file(tmp_path: Path, protocol: int) -> None:
    source = tmp_path / "source.pkl"
    joblib.dump(_value(), source, protocol=protocol)
    size = source.stat().st_size
    # Every byte of the pickle's opening, then every 4th (array bytes, the pickle between them).
    positions = sorted({*range(min(size, 300)), *range(300, size, 4)})
    cases = [{"kind": "truncate", "position": n, "mmap_mode": None} for n in positions]
    cases += [{"kind": "truncate", "position": n, "mmap_mode": "r+"} for n in range(0, size, 7)]
    outcomes = _run(source, tmp_path, cases)
    short = {case: o for case, o in outcomes.items() if int(case.split("@")[1].split("/")[0]) < 2}
    assert set(short.values()) <= {"corrupted", "archive-error"}  # too short to be told a pickle
    rest = {case: o for case, o in outcomes.items() if case not in short}
    assert set(rest.values()) == {"corrupted"}, {c: o for c, o in rest.items() if o != "corrupted"}


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_truncated_compressed_files(tmp_path: Path, compressor: str) -> None:
    source = tmp_path / "source.pkl"
    joblib.dump(_value(), source, compress=(compressor, 3))
    size = source.stat().st_size
    positions = sorted({*range(0, size, max(1, size // 150)), *range(max(0, size - 20), size)})
    cases = [{"kind": "truncate", "position": n, "mmap_mode": None} for n in positions]
    outcomes = _run(source, tmp_path, cases)
    # The shortest stubs may not even be told a joblib file: an ArchiveError all the same.
    long_enough = {c: o for c, o in outcomes.items() if int(c.split("@")[1].split("/")[0]) >= 24}
    assert set(long_enough.values()) == {"corrupted"}, long_enough
    assert set(outcomes.values()) <= {"corrupted", "archive-error"}


@pytest.mark.parametrize("compressor", [None, *COMPRESSORS])
def test_flipped_bytes(tmp_path: Path, compressor: str | None) -> None:
    source = tmp_path / "source.pkl"
    joblib.dump(_value(), source, compress=0 if compressor is None else (compressor, 3))
    size = source.stat().st_size
    # Past the stream headers (whose fields, a gzip mtime, may be anything), before its trailer.
    positions = range(size // 5, size - size // 5, max(1, size // 60))
    cases = [{"kind": "flip", "position": n, "mmap_mode": None} for n in positions]
    outcomes = _run(source, tmp_path, cases)
    if compressor in CHECKSUMMED:
        assert set(outcomes.values()) == {"corrupted"}, outcomes
    else:
        # Without a checksum, damaged array bytes load as other numbers (as with joblib); all
        # else fails as corrupted.
        assert set(outcomes.values()) <= {"corrupted", "loaded"}


def test_a_damaged_zfile(tmp_path: Path) -> None:
    from joblib_helpers import JOBLIB_DATA

    assert JOBLIB_DATA is not None
    source = JOBLIB_DATA / "joblib_0.9.2_compressed_pickle_py35_np19.gz"
    size = source.stat().st_size
    cases = [{"kind": "truncate", "position": n, "mmap_mode": None} for n in range(4, size, 5)]
    cases += [{"kind": "flip", "position": n, "mmap_mode": None} for n in range(30, size, 9)]
    outcomes = _run(source, tmp_path, cases)
    assert set(outcomes.values()) == {"corrupted"}, outcomes
