"""An outside reader: zarrita (JavaScript) reads the arrays of zoblib's Zarr directory and ZIP archives.

The test writes archives with every core numeric dtype, big-endian and Fortran-ordered arrays and
each codec zoblib writes, plus the expected values (``expected/<name>.bin``: C order, little endian)
and a manifest, then runs ``node tests/js/read_archives.mjs``, which reads every array with zarrita
(checking each chunk's trailing CRC-32C) and compares it byte for byte. "Probe" arrays and archives
(dtypes or codecs zarrita does not know) may fail to open, but must never read wrong values.

Needs node and, the first time, npm (``npm ci`` in tests/js). Without node the test is skipped,
except in CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import zoblib

JS_DIR = Path(__file__).parent / "js"
N = 140_000  # 8-byte dtypes over 1 MiB, so even with the default thresholds they are nodes
CHUNK_NBYTES = 64 << 10  # several chunks even for the 1-byte dtypes

#: zoblib's default pack_threshold: arrays this big are always their own node (format_spec/v2.md 5.1).
PACK_THRESHOLD = 1 << 20

#: (file name, compress, which arrays, packed). "all" is every array, probe dtypes too; "core" the
#: required ones; "few" a handful (for the probe archives, whose codecs zarrita is not expected to
#: know). Archives are written with ``pack_threshold=0, inline_threshold=0`` (every array its own
#: node), except "packed" ones, written with zoblib's defaults: arrays under 1 MiB go into packs,
#: which zarrita reads as zoblib's internal nodes.
ARCHIVES: list[tuple[str, Any, str, bool]] = [
    ("blosc_lz4.zarr", ("blosc-lz4", 3), "all", False),
    ("zstd.zarr", "zstd", "core", False),
    ("none.zarr", 0, "core", False),
    ("int3.zip", 3, "all", False),  # blosc lz4, or zstd per node where that is 10% smaller
    ("int7.zip", 7, "core", False),  # blosc zstd, or zstd
    ("zstd.zip", ("zstd", 5), "core", False),
    ("gzip.zip", "gzip", "core", False),
    ("zlib.zip", "zlib", "core", False),  # numcodecs.zlib
    ("lz4.zip", "lz4", "core", False),  # numcodecs.lz4
    ("none.zip", 0, "core", False),
    ("packed.zip", 3, "all", True),
    ("packed.zarr", 0, "all", True),
    ("bz2.zip", "bz2", "few", False),  # numcodecs.bz2
    ("lzma.zarr", "lzma", "few", False),  # numcodecs.lzma
]
FEW = ("int32", "float64", "f8_fortran_2d")


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason} (CI is set: the zarrita test must run)")
    pytest.skip(reason)


def _arrays() -> dict[str, tuple[np.ndarray, bool]]:
    """name -> (array, probe)."""
    rng = np.random.default_rng(11)
    out: dict[str, tuple[np.ndarray, bool]] = {"bool": (rng.random(N) < 0.3, False)}
    for dt in ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"):
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, size=N, dtype=dt, endpoint=True)
        a[:2] = [info.min, info.max]
        out[np.dtype(dt).name] = (a, False)
    for dt in ("f4", "f8"):
        a = (rng.standard_normal(N) * 1e3).astype(dt)
        a[:5] = [np.nan, np.inf, -np.inf, -0.0, np.finfo(dt).tiny]
        out[np.dtype(dt).name] = (a, False)
    out["f8_big"] = ((rng.standard_normal(N) * 1e6).astype(">f8"), False)
    out["i4_big"] = (rng.integers(-(2**31), 2**31, size=N, dtype=np.int64).astype(">i4"), False)
    out["f8_fortran_2d"] = (np.asfortranarray(rng.standard_normal((400, 350))), False)
    out["i4_big_fortran_2d"] = (
        np.asfortranarray(rng.integers(-(10**9), 10**9, size=(350, 400)).astype(">i4")),
        False,
    )
    out["f4_fortran_3d"] = (np.asfortranarray(rng.standard_normal((20, 50, 140)).astype("f4")), False)
    # Probes: Zarr v3 types (or zarr-python extensions) zarrita may not read.
    out["float16"] = (rng.standard_normal(N).astype("f2"), True)
    out["complex64"] = ((rng.standard_normal(N) + 1j * rng.standard_normal(N)).astype("c8"), True)
    out["complex128"] = (rng.standard_normal(N) + 1j * rng.standard_normal(N), True)
    out["datetime64_s"] = (rng.integers(0, 2**40, size=N).astype("M8[s]"), True)
    out["timedelta64_ns"] = (rng.integers(-(2**50), 2**50, size=N).astype("m8[ns]"), True)
    out["unicode_U4"] = (np.array([f"é{i % 1000}" for i in range(N)], dtype="U4"), True)
    out["bytes_S4"] = (np.array([b"ab%d" % (i % 100) for i in range(N)], dtype="S4"), True)
    out["structured"] = (np.zeros(N, dtype=[("a", "<i4"), ("b", "<f8")]), True)
    return out


def _text(x: Any) -> str:
    """A value as read_archives.mjs compares it (bool, integer or float)."""
    if isinstance(x, np.bool_):
        return "true" if x else "false"
    if isinstance(x, np.integer):
        return str(int(x))
    if isinstance(x, np.floating):
        v = float(x)
        if np.isnan(v):
            return "nan"
        if np.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return repr(v)
    if isinstance(x, (np.datetime64, np.timedelta64)):
        return str(int(x.view("i8")))
    raise TypeError(type(x))


def _samples(a: np.ndarray) -> list[list[Any]]:
    if a.dtype.kind not in "biufMm":
        return []
    flat = np.ascontiguousarray(a).reshape(-1)
    picks = sorted({0, 1, 2, 3, 4, 7, flat.size // 3, flat.size // 2, flat.size - 2, flat.size - 1})
    return [[i, _text(flat[i])] for i in picks]


def _installed(js: Path) -> bool:
    """Whether node_modules holds exactly the versions package.json pins."""
    deps = json.loads((js / "package.json").read_text())["dependencies"]
    for name, version in deps.items():
        meta = js / "node_modules" / name / "package.json"
        if not meta.is_file() or json.loads(meta.read_text()).get("version") != version:
            return False
    return True


def _npm_ci(js: Path) -> None:
    if _installed(js):
        return
    npm = shutil.which("npm")
    if npm is None:
        _fail_or_skip("npm not found, and tests/js/node_modules is not installed")
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
        cwd=js,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"npm ci failed:\n{proc.stdout}\n{proc.stderr}"
    assert _installed(js), "npm ci did not install the pinned versions"


def test_zarrita_reads_zoblib_archives(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        _fail_or_skip("node not found")
    _npm_ci(JS_DIR)

    arrays = _arrays()
    (tmp_path / "expected").mkdir()
    manifest: dict[str, Any] = {
        "zarrita": json.loads((JS_DIR / "package.json").read_text())["dependencies"]["zarrita"],
        "arrays": {},
        "archives": [],
    }
    for name, (a, probe) in arrays.items():
        little = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"))
        (tmp_path / "expected" / f"{name}.bin").write_bytes(little.tobytes())
        manifest["arrays"][name] = {
            "node": f"arrays/{name}",
            "dtype": a.dtype.str,
            "shape": list(a.shape),
            "itemsize": a.dtype.itemsize,
            "probe": probe,
            "samples": _samples(a),
        }
    for filename, compress, which, packed in ARCHIVES:
        names = [
            name
            for name, (_, probe) in arrays.items()
            if which == "all" or (which == "core" and not probe) or (which == "few" and name in FEW)
        ]
        thresholds = {} if packed else {"inline_threshold": 0, "pack_threshold": 0}
        zoblib.dump(
            {name: arrays[name][0] for name in names},
            tmp_path / filename,
            compress=compress,
            chunk_nbytes=CHUNK_NBYTES,
            fsync=False,
            **thresholds,
        )
        manifest["archives"].append(
            {
                "path": filename,
                "kind": "zarr" if filename.endswith(".zarr") else "zip",
                "arrays": names,
                "probe": which == "few",
                "packed": packed,
            }
        )
    manifest["probe_dtypes"] = sorted({a.dtype.str for a, probe in arrays.values() if probe})
    (tmp_path / "expected.json").write_text(json.dumps(manifest))

    proc = subprocess.run(
        [node, str(JS_DIR / "read_archives.mjs"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(proc.stdout)
    print(proc.stderr)
    summary = re.search(r"^zarrita: (\d+) matched, (\d+) failed, (\d+) unsupported", proc.stdout, re.M)
    assert summary, (
        f"no summary from read_archives.mjs (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    matched, failed, _unsupported = map(int, summary.groups())
    failures = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == 0 and not failures, "\n".join(failures)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # Every required array (that is a node) of every non-probe archive, once per way it is opened.
    required = sum(not probe for _, probe in arrays.values())
    big = sum(not probe and a.nbytes >= PACK_THRESHOLD for a, probe in arrays.values())
    assert big >= 4
    expected = sum(
        (1 if f.endswith(".zarr") else 2) * (big if packed else required)
        for f, _, which, packed in ARCHIVES
        if which != "few"
    )
    assert matched >= expected, (matched, expected)
    # Every chunk of the non-probe archives went through the checking crc32c codec.
    assert re.search(r"^[1-9]\d* chunk checksums \(crc32c\) verified", proc.stdout, re.M)
