"""Archives read by a reader written from format_spec/ alone (``reader.py``, which never imports zoblib)."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).parent
DATA = HERE.parent / "data"


def _import_path(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


reader = _import_path("spec_reader", HERE / "reader.py")
golden = _import_path("make_golden_archives", DATA / "make_golden_archives.py")


def assert_same(loaded: Any, expected: Any, where: str = "value") -> None:
    """Deep comparison: types, numpy dtype/shape/values/order, masked arrays' masks."""
    assert type(loaded) is type(expected), f"{where}: {type(loaded)} != {type(expected)}"
    if isinstance(expected, np.ma.MaskedArray):
        assert_same(np.ma.getdata(loaded), np.ma.getdata(expected), f"{where}.data")
        np.testing.assert_array_equal(np.ma.getmaskarray(loaded), np.ma.getmaskarray(expected))
        assert loaded.hardmask == expected.hardmask, where
        assert_same(loaded.fill_value, expected.fill_value, f"{where}.fill_value")
    elif isinstance(expected, np.ndarray):
        assert loaded.dtype == expected.dtype, f"{where}: {loaded.dtype} != {expected.dtype}"
        assert loaded.dtype.str == expected.dtype.str, where  # byte order kept
        assert loaded.shape == expected.shape, where
        if expected.ndim > 1 and expected.flags.f_contiguous and not expected.flags.c_contiguous:
            assert loaded.flags.f_contiguous, f"{where}: F order lost"
        assert packed_bytes(loaded) == packed_bytes(expected), where
    elif isinstance(expected, dict):
        assert list(loaded) == list(expected), where
        for key in expected:
            assert_same(loaded[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(loaded) == len(expected), where
        for i, (a, b) in enumerate(zip(loaded, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, np.generic):
        assert loaded.dtype == expected.dtype and loaded.tobytes() == expected.tobytes(), where
    else:
        assert loaded == expected, where


def packed_bytes(array: np.ndarray) -> bytes:
    """C-order bytes without structured padding (whose bytes numpy does not keep)."""
    from numpy.lib import recfunctions

    if array.dtype.names is not None:
        array = recfunctions.repack_fields(array, recurse=True)
    return np.ascontiguousarray(array).tobytes()


# -- the reader never imports zoblib --------------------------------------------------------


def test_reader_source_does_not_import_zoblib() -> None:
    tree = ast.parse((HERE / "reader.py").read_text())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        assert not any(name.split(".")[0] == "zoblib" for name in names), ast.dump(node)


def test_reader_loads_every_golden_archive_without_zoblib_in_sys_modules() -> None:
    code = (
        "import sys, importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('r', {str(HERE / 'reader.py')!r})\n"
        "r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)\n"
        f"for name in {golden.ALL_GOLDEN!r}:\n"
        f"    r.load({str(DATA)!r} + '/' + name)\n"
        "bad = [m for m in sys.modules if m == 'zoblib' or m.startswith('zoblib.')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- golden archives ------------------------------------------------------------------------


@pytest.mark.parametrize("name", golden.ALL_GOLDEN)
def test_golden_archive(name: str) -> None:
    expected = golden.expected_value(name)
    loaded, details = reader.load(DATA / name, return_details=True)
    assert details["version"] == int(name[1])
    assert details["kind"] == {"pkl": "zip", "zarr": "directory", "h5": "hdf5"}[name.split(".")[-1]]
    assert_same(loaded, expected)
    assert loaded["own"] is loaded["same_again"]
    assert loaded["fortran_big_endian"].flags.f_contiguous


@pytest.mark.parametrize("name", [n for n in sorted(golden.GOLDEN) if not n.endswith(".h5")])
def test_golden_zarr_nodes_read_by_zarr_python(name: str, tmp_path: Path) -> None:
    """Section 1: every array node is a valid Zarr v3 array a Zarr reader decodes alike."""
    import zarr

    path = DATA / name
    if path.is_dir():
        store = zarr.storage.LocalStore(path, read_only=True)
    else:
        store = zarr.storage.ZipStore(path, mode="r")
    _, details = reader.load(path, return_details=True)
    for node_path, ours in details["values"].items():
        theirs = zarr.open_array(store, path=node_path, mode="r")[...]
        assert theirs.shape == ours.shape
        # zarr-python hands out native byte order: compare values, in its dtype.
        ours = np.ascontiguousarray(ours).astype(theirs.dtype)
        assert np.ascontiguousarray(theirs).tobytes() == ours.tobytes()


# -- fresh archives written by zoblib -------------------------------------------------------


def fresh_value() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    weights = rng.standard_normal((400, 300))
    return {
        "weights": weights,
        "alias": weights,
        "fortran_be": np.asfortranarray(rng.integers(0, 1 << 20, size=(300, 200)).astype(">i8")),
        "packed": [rng.standard_normal(n).astype(np.float32) for n in (3000, 4000, 5000)],
        "layers": [{"W": rng.standard_normal((64, 64)), "b": np.zeros(64)} for _ in range(2)],
        "zero_d": np.array(3.5),
        "zero_d_node": np.array(b"x" * 70000, dtype="S70000"),  # 0-d, yet its own node
        "zero_d_unicode": np.array("\u00e9" * 20000),
        "zero_d_be": np.array(7, dtype=">i2"),
        "empty": np.empty((0, 5)),
        "stamps": np.arange(5000).astype("datetime64[ms]"),
        "words": np.array(["alpha", "beta", "gamma"] * 1000),
        "aligned": np.zeros(3000, dtype=np.dtype([("a", "u1"), ("b", "<f8")], align=True)),
        "record": np.ones(3000, dtype=[("x", ">f4"), ("y", [("p", "<i2"), ("q", "S2")], (2,))]),
        "masked": np.ma.masked_array(rng.standard_normal(20000), mask=rng.random(20000) < 0.3),
        "small_be": np.arange(4, dtype=">u4"),
        # Fields out of order: the node's dtype is the {"__dict_descr__": ...} form (section 3.1).
        "out_of_order": np.arange(3000 * 12, dtype="u1").view(
            np.dtype({"names": ["x", "y"], "formats": ["<i4", "<i2"], "offsets": [4, 0], "itemsize": 12})
        ),
        "inline_f_be": np.asfortranarray(np.arange(6, dtype=">i2").reshape(2, 3)),
        "no_mask": np.ma.masked_array(np.arange(3000.0)),
        "python": {"tuple": (1, "two", 3.0), "none": None},
    }


FRESH = {
    "blosc.pkl": {"compress": 3},
    "zstd.zarr": {"compress": "zstd"},
    "plain.zarr": {},
    "plain.h5": {},
    "zstd.h5": {"compress": "zstd"},
    "blosc9.h5": {"compress": 9},
    "bz2.pkl": {"compress": "bz2"},
    "nochecksum.pkl": {"compress": 3, "checksum": False},
}


@pytest.mark.parametrize("name", sorted(FRESH))
def test_fresh_archive(name: str, tmp_path: Path) -> None:
    import zoblib

    value = fresh_value()
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Small chunks and thresholds: many chunks per node, every array extracted or packed.
        zoblib.dump(
            value, path, **FRESH[name], inline_threshold=16, pack_threshold=64 << 10,
            chunk_nbytes=64 << 10,
        )  # fmt: skip
    loaded, details = reader.load(path, return_details=True)
    assert details["version"] == 2
    assert_same(loaded, value)
    assert loaded["weights"] is loaded["alias"]
    assert loaded["fortran_be"].flags.f_contiguous
    assert loaded["fortran_be"].dtype.str == ">i8"
    assert loaded["inline_f_be"].flags.f_contiguous
    assert loaded["no_mask"].mask is np.ma.nomask
    nodes = details["record"]["nodes"]
    assert any(len(entry["shape"]) == 0 for entry in nodes.values()), "no 0-d node"
    assert any(path.startswith("packs/") for path in nodes)
    if FRESH[name].get("compress"):
        assert any(
            math_prod(e["shape"]) and len(e.get("chunk_crc32c", "x" * 16)) > 8 for e in nodes.values()
        ), "no multi-chunk node"


def math_prod(shape: list[int]) -> int:
    return int(np.prod(shape)) if shape else 1


def test_fresh_archive_tampered_chunk_is_damage(tmp_path: Path) -> None:
    """Section 5.2: a chunk swapped with another carries a valid trailing CRC but not the listed one."""
    import zoblib

    path = tmp_path / "swap.zarr"
    zoblib.dump({"a": np.arange(100000.0)}, path, compress="zstd", pack_threshold=1024, chunk_nbytes=64 << 10)
    record = json.loads((path / "zarr.json").read_text())["attributes"]["zoblib"]
    node = next(p for p in record["nodes"] if p.startswith("arrays/"))
    first, second = path / node / "c" / "0", path / node / "c" / "1"
    saved = first.read_bytes()
    shutil.copyfile(second, first)
    with pytest.raises(reader.SpecReaderError, match="differs from the record"):
        reader.load(path)
    first.write_bytes(saved[:-1] + bytes([saved[-1] ^ 1]))
    with pytest.raises(reader.SpecReaderError, match="trailing CRC-32C"):
        reader.load(path)


def test_fresh_archive_damaged_record_is_refused(tmp_path: Path) -> None:
    import zoblib

    path = tmp_path / "record.zarr"
    zoblib.dump({"a": np.arange(100000.0)}, path)
    document = json.loads((path / "zarr.json").read_text())
    document["attributes"]["zoblib"]["pickler"] = "pickle "
    (path / "zarr.json").write_text(json.dumps(document))
    with pytest.raises(reader.SpecReaderError, match="CRC-32C mismatch"):
        reader.load(path)
    document["attributes"]["zoblib"]["format_version"] = 3
    (path / "zarr.json").write_text(json.dumps(document))
    with pytest.raises(reader.SpecReaderError, match="reads versions 1, 2"):
        reader.load(path)
    (path / "zarr.json").write_text(json.dumps(document).replace('"byteorder"', '"x": NaN, "byteorder"'))
    with pytest.raises(reader.SpecReaderError, match="non-strict"):
        reader.load(path)
