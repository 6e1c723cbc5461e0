"""Round trips: what ``dump`` writes, ``load`` gives back exactly, in every container and codec.

"Exactly" is :func:`zoblib.testing.assert_same_object`: same types, dtypes (byte order
included), shapes, Fortran order, the bits of every value (NaN payloads, signed zeros) and the
same sharing (one array referenced twice comes back as one object).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numcodecs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import zoblib
from zoblib.testing import assert_same_object
from zoblib.testing import strategies as zst


def load_stored(*args: Any, **kwargs: Any) -> Any:
    """``zoblib.load`` keeping the stored byte order: these tests compare dtypes exactly."""
    kwargs.setdefault("ensure_native_byte_order", False)
    return zoblib.load(*args, **kwargs)


if TYPE_CHECKING:
    from conftest import ArchiveLocation, Container

COMPRESSIONS = [0, 3, "zlib", ("lzma", 1), "zstd", ("bz2", 1)]
MMAP_MODES = [None, "r"]
#: (inline_threshold, pack_threshold): every array extracted into its own node, or arrays
#: under 1 KiB packed and the others in their own nodes.
LAYOUTS = {"own-nodes": (0, 0), "packed": (0, 1024)}


def _dump_options(compress: Any, layout: str) -> dict[str, Any]:
    inline_threshold, pack_threshold = LAYOUTS[layout]
    return {"compress": compress, "inline_threshold": inline_threshold, "pack_threshold": pack_threshold}


def _check_round_trip(location: ArchiveLocation, value: Any, **dump_options: Any) -> None:
    try:
        location.dump(value, **dump_options)
        for mmap_mode in MMAP_MODES:
            loaded = location.load(mmap_mode=mmap_mode)
            assert_same_object(value, loaded, lazy_arrays=mmap_mode is not None)
    finally:
        location.remove()


# ---- properties -------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("compress", COMPRESSIONS, ids=repr)
def test_object_graphs_round_trip(container: Container, compress: Any, layout: str) -> None:
    shapes = zst.array_shapes(min_dims=0, min_side=0)

    @settings(max_examples=10)
    @given(value=zst.object_graphs(shape=shapes))
    def check(value: Any) -> None:
        _check_round_trip(container.location(), value, **_dump_options(compress, layout))

    check()


@pytest.mark.parametrize("compress", [0, "zstd"], ids=repr)
def test_inline_object_graphs_round_trip(container: Container, compress: Any) -> None:
    """With the default thresholds small arrays stay in the pickle skeleton."""

    native = zst.numeric_dtypes(byte_orders=[zst.NATIVE_BYTE_ORDER])
    graphs = zst.object_graphs(zst.dtypes(), masked_dtype=native)

    @settings(max_examples=15)
    @given(value=graphs)
    def check(value: Any) -> None:
        _check_round_trip(container.location(), value, compress=compress)

    check()


@given(
    array=zst.arrays(shape=zst.array_shapes(min_dims=1, max_side=8)),
    compress=st.sampled_from(COMPRESSIONS),
    layout=st.sampled_from(list(LAYOUTS)),
    chunk_nbytes=st.sampled_from([64, 4 << 20]),
)
def test_arrays_of_every_dtype_and_layout_round_trip(
    container: Container, array: np.ndarray[Any, Any], compress: Any, layout: str, chunk_nbytes: int
) -> None:
    if compress == 0 and LAYOUTS[layout][1] > 0 and array.size == 0:
        return  # a pack of only empty arrays: test_pack_of_only_empty_arrays
    _check_round_trip(
        container.location(), array, chunk_nbytes=chunk_nbytes, **_dump_options(compress, layout)
    )


# ---- dtypes -----------------------------------------------------------------------------------


def _both_orders(code: str) -> list[str]:
    return [f"<{code}", f">{code}"]


SCALAR_DTYPES = [
    "?",
    "i1",
    "u1",
    *[d for code in ("i2", "i4", "i8", "u2", "u4", "u8") for d in _both_orders(code)],
    *[d for code in ("f2", "f4", "f8", "g") for d in _both_orders(code)],
    *[d for code in ("c8", "c16", "G") for d in _both_orders(code)],
    *[f"<M8[{unit}]" for unit in zst.DATETIME_UNITS],
    *[f"<m8[{unit}]" for unit in zst.DATETIME_UNITS],
    ">M8[ns]",
    ">M8[D]",
    ">m8[us]",
    ">m8[Y]",
    "S1",
    "S7",
    "<U1",
    "<U6",
    ">U6",
]
STRUCTURED_DTYPES = {
    "packed": np.dtype([("a", "<i4"), ("b", "<f8"), ("c", "S3")]),
    "aligned": np.dtype([("a", "u1"), ("b", "<f8"), ("c", "<i2")], align=True),
    "big-endian-fields": np.dtype([("a", ">i4"), ("b", ">f8"), ("t", ">M8[s]")]),
    "mixed-orders": np.dtype([("a", "<i4"), ("b", ">c16"), ("u", ">U2")]),
    "subarray": np.dtype([("xyz", "<f4", (3,)), ("grid", ">i2", (2, 2))]),
    "nested": np.dtype([("id", "<i8"), ("point", [("x", "<f8"), ("y", ">f8"), ("tag", [("k", "S2")])])]),
    "nested-aligned-subarray": np.dtype(
        [("flag", "?"), ("inner", np.dtype([("a", "u1"), ("b", "<i8")], align=True), (2,))], align=True
    ),
    "titled": np.dtype({"names": ["a", "b"], "formats": ["<i4", "<f4"], "titles": ["Alpha", "Beta"]}),
    "with-datetime-and-bool": np.dtype([("when", "<M8[ms]"), ("ok", "?"), ("span", "<m8[s]")]),
}
DTYPES = {code: np.dtype(code) for code in SCALAR_DTYPES} | STRUCTURED_DTYPES
DTYPE_LAYOUTS = {"inline": (65536, 8 << 20), "packed": (0, 1 << 20), "own-node": (0, 0)}


def _sample_array(
    dtype: np.dtype[Any], shape: tuple[int, ...] = (7, 5), seed: int = 0
) -> np.ndarray[Any, Any]:
    return zst.random_values(shape, dtype, seed)


def _dtype_params() -> list[Any]:
    params = []
    for name, dtype in DTYPES.items():
        for layout in DTYPE_LAYOUTS:
            params.append(pytest.param(dtype, layout, id=f"{name}-{layout}"))
    return params


@pytest.mark.parametrize(("dtype", "layout"), _dtype_params())
def test_every_dtype_round_trips(tmp_path: Path, dtype: np.dtype[Any], layout: str) -> None:
    inline_threshold, pack_threshold = DTYPE_LAYOUTS[layout]
    value = {"c": _sample_array(dtype), "f": np.asfortranarray(_sample_array(dtype, seed=1))}
    value["strided"] = _sample_array(dtype, (9, 8), seed=2)[::2, ::-3]
    path = tmp_path / "dtypes.pkl"
    zoblib.dump(value, path, inline_threshold=inline_threshold, pack_threshold=pack_threshold)
    refs = zoblib_record(path)["refs"]
    assert len(refs) == (0 if layout == "inline" else 3)
    assert all(("offset" in ref) == (layout == "packed") for ref in refs)
    for mmap_mode in MMAP_MODES:
        assert_same_object(value, load_stored(path, mmap_mode=mmap_mode), lazy_arrays=mmap_mode is not None)


@pytest.mark.parametrize("dtype", ["<M8[s]", ">u4", ">f8", ">c8", "<g", ">U3"])
def test_inline_arrays_keep_byte_order_at_highest_protocol(tmp_path: Path, dtype: str) -> None:
    array = np.arange(6).astype(dtype)
    zoblib.dump(array, tmp_path / "a.pkl")
    assert load_stored(tmp_path / "a.pkl").dtype.str == np.dtype(dtype).str


@pytest.mark.parametrize(
    ("dtype", "protocol", "view"),
    [(">M8[s]", None, "C"), (">g", None, "C"), (">u4", None, "strided"), (">u4", 4, "C"), (">f8", 2, "C")],
)
def test_inline_arrays_keep_byte_order(tmp_path: Path, dtype: str, protocol: int | None, view: str) -> None:
    array = np.arange(12).astype(dtype)
    if view == "strided":
        array = array[::2]
    zoblib.dump({"small": array}, tmp_path / "a.pkl", protocol=protocol)
    loaded = load_stored(tmp_path / "a.pkl")["small"]
    assert loaded.dtype.str == np.dtype(dtype).str
    assert loaded.tolist() == array.tolist()


@pytest.mark.parametrize(
    ("dtype", "layout"),
    [(">i2", "own-node"), ("S4", "own-node"), ("<U3", "own-node"), ("<f8", "packed"), (">i2", "packed")],
)
def test_zero_d_array_compressed(tmp_path: Path, dtype: str, layout: str) -> None:
    array = np.array(b"ab\x00\x00" if dtype == "S4" else "xy" if dtype == "<U3" else 24450, dtype=dtype)
    path = tmp_path / "zero-d.pkl"
    zoblib.dump(
        array,
        path,
        compress="zlib",
        **{"inline_threshold": 0, "pack_threshold": 0 if layout == "own-node" else 1024},
    )
    for mmap_mode in MMAP_MODES:
        loaded = load_stored(path, mmap_mode=mmap_mode)
        assert np.asarray(loaded).dtype == array.dtype
        assert np.asarray(loaded).tobytes() == array.tobytes()


@pytest.mark.parametrize("target", ["a.pkl", "a.zarr"])
def test_pack_of_only_empty_arrays(tmp_path: Path, target: str) -> None:
    value = [np.zeros((0, 3)), np.zeros(0), np.arange(5.0)[5:]]
    zoblib.dump(value, tmp_path / target, inline_threshold=0)
    loaded = load_stored(tmp_path / target)
    assert [a.shape for a in loaded] == [(0, 3), (0,), (0,)]


def test_empty_arrays_beside_others_in_packs(tmp_path: Path) -> None:
    value = [np.zeros((0, 3)), np.arange(4.0), np.zeros(0)]
    zoblib.dump(value, tmp_path / "a.pkl", inline_threshold=0)
    assert_same_object(value, load_stored(tmp_path / "a.pkl"))


def test_protocol_0(tmp_path: Path) -> None:
    value = {"big": np.arange(100.0), "small": np.arange(3)}
    zoblib.dump(value, tmp_path / "p0.pkl", protocol=0, inline_threshold=64)
    assert_same_object(value, load_stored(tmp_path / "p0.pkl"))


@pytest.mark.parametrize("protocol", [1, 2, 3, 4, 5])
def test_pickle_protocols(tmp_path: Path, protocol: int) -> None:
    value = {"big": np.arange(100.0), "small": np.arange(3.0), "twice": [np.ones(50)] * 2}
    zoblib.dump(value, tmp_path / "p.pkl", protocol=protocol, inline_threshold=64)
    loaded = load_stored(tmp_path / "p.pkl")
    assert_same_object(value, loaded)
    assert zoblib_record(tmp_path / "p.pkl")["pickle_protocol"] == protocol


# ---- object kinds -----------------------------------------------------------------------------


def zoblib_record(path: Path) -> dict[str, Any]:
    """The root attribute ``zoblib`` of the archive at ``path`` (directory or ZIP)."""
    if path.is_dir():
        document = json.loads((path / "zarr.json").read_bytes())
    else:
        with zipfile.ZipFile(path) as archive:
            document = json.loads(archive.read("zarr.json"))
    record: dict[str, Any] = document["attributes"]["zoblib"]
    return record


def test_masked_arrays(archive: ArchiveLocation) -> None:
    data = np.arange(40000, dtype=">f8").reshape(200, 200)
    value = {
        "masked": np.ma.MaskedArray(data, mask=data % 3 == 0, fill_value=-1.0),
        "hard": np.ma.MaskedArray(np.arange(10), mask=[1, 0] * 5, hard_mask=True, fill_value=7),
        "nomask": np.ma.MaskedArray(np.arange(20000.0)),
        "fortran": np.ma.MaskedArray(np.asfortranarray(data[:50]), mask=np.asfortranarray(data[:50] > 5)),
        "masked-constant": np.ma.masked,
    }
    archive.dump(value, inline_threshold=1024)
    for mmap_mode in MMAP_MODES:
        loaded = archive.load(mmap_mode=mmap_mode)
        assert_same_object(
            {k: v for k, v in value.items() if k != "masked-constant"},
            {k: v for k, v in loaded.items() if k != "masked-constant"},
            lazy_arrays=mmap_mode is not None,
        )
        assert loaded["masked-constant"] is np.ma.masked
        assert loaded["masked"].sum() == value["masked"].sum()
        assert loaded["hard"].hardmask
        assert loaded["nomask"].mask is np.ma.nomask  # as numpy (and joblib) give it back
    nodes = archive.root_record()["nodes"]
    assert sum(path.startswith(("arrays/", "packs/")) for path in nodes) >= 2


def test_scipy_sparse_matrices(archive: ArchiveLocation) -> None:
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    dense = rng.random((300, 200)) * (rng.random((300, 200)) < 0.3)
    value = {"csr": sparse.csr_matrix(dense), "coo": sparse.coo_matrix(dense), "csc": sparse.csc_array(dense)}
    archive.dump(value, compress=3, inline_threshold=1024)
    assert len(archive.root_record()["refs"]) >= 6  # data, indices, indptr / row, col ...
    for mmap_mode in MMAP_MODES:
        loaded = archive.load(mmap_mode=mmap_mode)
        for name, matrix in value.items():
            assert type(loaded[name]) is type(matrix)
            assert loaded[name].format == matrix.format
            assert loaded[name].dtype == matrix.dtype
            np.testing.assert_array_equal(loaded[name].toarray(), dense)


@dataclasses.dataclass
class Measurement:
    name: str
    values: np.ndarray[Any, Any]
    weights: np.ndarray[Any, Any] | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


class LinearModel:
    """Shaped like an sklearn estimator: parameters, and fitted array attributes ending in '_'."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> LinearModel:
        self.coef_, *_ = np.linalg.lstsq(x, y, rcond=None)
        self.intercept_ = np.float64(0.5)
        self.n_features_in_ = x.shape[1]
        self.feature_names_in_ = np.array([f"x{i}" for i in range(x.shape[1])], dtype=object)
        self.components_ = np.asfortranarray(np.outer(self.coef_, np.arange(3000.0)))
        return self

    def predict(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        result: np.ndarray[Any, Any] = x @ self.coef_ + self.intercept_
        return result


def test_dataclass_and_estimator(archive: ArchiveLocation) -> None:
    rng = np.random.default_rng(1)
    x, y = rng.random((500, 4)), rng.random(500)
    model = LinearModel(alpha=0.1).fit(x, y)
    measurement = Measurement("m", rng.random(20000), weights=np.ones(10), meta={"unit": "s"})
    archive.dump({"model": model, "measurement": measurement}, inline_threshold=4096)
    assert archive.root_record()["pickler"] == "pickle"
    for mmap_mode in MMAP_MODES:
        loaded = archive.load(mmap_mode=mmap_mode)
        assert type(loaded["model"]) is LinearModel
        assert_same_object(vars(model), vars(loaded["model"]), lazy_arrays=mmap_mode is not None)
        np.testing.assert_array_equal(loaded["model"].predict(x), model.predict(x))
        assert_same_object(measurement, loaded["measurement"], lazy_arrays=mmap_mode is not None)


def test_pandas_dataframe(archive: ArchiveLocation) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "a": np.arange(20000.0),
            "b": np.arange(20000) % 7,
            "when": pd.date_range("2024-01-01", periods=20000, freq="min"),
            "label": ["x", "y"] * 10000,
        }
    )
    archive.dump({"frame": frame, "series": frame["a"]}, compress=3)
    loaded = archive.load()
    pd.testing.assert_frame_equal(loaded["frame"], frame)
    pd.testing.assert_series_equal(loaded["series"], frame["a"])


def test_numpy_scalars(archive: ArchiveLocation) -> None:
    scalars = [_sample_array(dtype, (3,))[1] for dtype in DTYPES.values()]
    scalars += [np.float64("nan"), np.float32(-0.0), np.datetime64("NaT"), np.int8(-128), np.bool_(True)]
    archive.dump(scalars, inline_threshold=0)
    loaded = archive.load()
    assert_same_object(scalars, loaded)


@pytest.mark.parametrize("layout", list(DTYPE_LAYOUTS))
def test_same_array_twice_loads_as_one_object(archive: ArchiveLocation, layout: str) -> None:
    inline_threshold, pack_threshold = DTYPE_LAYOUTS[layout]
    array = np.arange(1000.0)
    other = np.arange(1000.0)
    value = [array, array, {"again": array}, other]
    archive.dump(value, inline_threshold=inline_threshold, pack_threshold=pack_threshold)
    assert len(archive.root_record()["refs"]) == (0 if layout == "inline" else 2)
    for mmap_mode in MMAP_MODES:
        loaded = archive.load(mmap_mode=mmap_mode)
        assert loaded[0] is loaded[1]
        assert loaded[2]["again"] is loaded[0]
        assert loaded[3] is not loaded[0]
        np.testing.assert_array_equal(loaded[3], other)


def _make_local_things() -> tuple[Callable[[Any], Any], type, Callable[[int], int]]:
    offset = np.arange(3.0)

    class LocalPoint:
        def __init__(self, coords: np.ndarray[Any, Any]) -> None:
            self.coords = coords

        def norm(self) -> float:
            return float(np.sqrt((self.coords**2).sum()))

    def shift(values: Any) -> Any:
        return values + offset

    return shift, LocalPoint, lambda n: n * 2


def test_lambdas_and_local_functions_and_classes(archive: ArchiveLocation) -> None:
    shift, local_point, double = _make_local_things()
    big = np.arange(30000.0)
    value = {"shift": shift, "point": local_point(big), "double": double, "big": big}
    archive.dump(value)
    assert archive.root_record()["pickler"] == "cloudpickle"
    assert len(archive.root_record()["refs"]) == 1  # the big array, once
    for mmap_mode in MMAP_MODES:
        loaded = archive.load(mmap_mode=mmap_mode)
        np.testing.assert_array_equal(loaded["shift"](np.zeros(3)), [0.0, 1.0, 2.0])
        assert loaded["double"](21) == 42
        assert loaded["point"].norm() == local_point(big).norm()
        assert loaded["point"].coords is loaded["big"]
        assert type(loaded["point"]).__name__ == "LocalPoint"


# ---- layout: inline, packs, own nodes ------------------------------------------------------------


def test_many_small_arrays_stay_inline(archive: ArchiveLocation) -> None:
    value = [np.full(10, i, dtype=np.int32) for i in range(10_000)]
    archive.dump(value)
    record = archive.root_record()
    assert list(record["nodes"]) == ["skeleton"]
    assert record["refs"] == []
    loaded = archive.load()
    assert len(loaded) == 10_000
    assert all(a[0] == i and a.dtype == np.int32 for i, a in enumerate(loaded))


def test_many_mid_size_arrays_are_packed(tmp_path: Path) -> None:
    count, itemsize = 2000, 8
    length = (256 << 10) // itemsize
    # np.zeros maps zero pages lazily: only the one page each array writes costs memory.
    value = [np.zeros(length) for _ in range(count)]
    for i, array in enumerate(value):
        array[i % length] = i + 1
    path = tmp_path / "packed.pkl"
    zoblib.dump(value, path, compress=3)
    record = zoblib_record(path)
    nodes = record["nodes"]
    assert not any(p.startswith("arrays/") for p in nodes)
    packs = [p for p in nodes if p.startswith("packs/")]
    assert 1 <= len(packs) <= math.ceil(count * length * itemsize / (256 << 20)) + 1
    assert len(record["refs"]) == count
    loaded = load_stored(path, mmap_mode="r")
    assert len(loaded) == count
    for i in (0, 1, 999, 1999):
        assert loaded[i].shape == (length,)
        assert loaded[i][i % length] == i + 1
        assert float(np.sum(loaded[i])) == i + 1


def test_arrays_above_pack_threshold_get_their_own_node(archive: ArchiveLocation) -> None:
    value = {"own": np.arange(5000.0), "packed": np.arange(500.0), "inline": np.arange(10.0)}
    archive.dump(value, inline_threshold=1000, pack_threshold=10_000)
    record = archive.root_record()
    assert sorted(record["nodes"]) == ["arrays/own", "packs/0", "skeleton"]
    refs = sorted(record["refs"], key=lambda ref: ref["node"])
    assert refs[0]["node"] == "arrays/own" and "offset" not in refs[0]
    assert refs[1]["node"] == "packs/0" and refs[1]["offset"] == 0 and refs[1]["shape"] == [500]
    assert_same_object(value, archive.load())


# ---- dump's return value and compression ----------------------------------------------------------


def test_dump_returns_the_paths_written(tmp_path: Path) -> None:
    value = {"x": np.arange(100_000)}
    assert zoblib.dump(value, tmp_path / "a.pkl") == [str(tmp_path / "a.pkl")]
    assert zoblib.dump(value, tmp_path / "a.zarr") == [str(tmp_path / "a.zarr")]
    assert zoblib.dump(value, str(tmp_path / "b.pkl.gz")) == [str(tmp_path / "b.pkl.gz")]
    # A file object gets nothing back, as from joblib.
    with open(tmp_path / "c.pkl", "wb") as file:
        assert zoblib.dump(value, file) is None
    assert zoblib.dump(value, io.BytesIO()) is None
    with open(tmp_path / "c.pkl", "rb") as file:
        np.testing.assert_array_equal(load_stored(file)["x"], value["x"])


def _codec_names(record: dict[str, Any]) -> set[Any]:
    return {None if node["codec"] is None else node["codec"]["name"] for node in record["nodes"].values()}


@pytest.mark.parametrize(
    ("suffix", "codec_name"),
    [
        (".z", "numcodecs.zlib"),
        (".gz", "gzip"),
        (".bz2", "numcodecs.bz2"),
        (".xz", "numcodecs.lzma"),
        (".lzma", "numcodecs.lzma"),
        (".lz4", "numcodecs.lz4"),
        (".pkl", None),
        (".GZ", "gzip"),
    ],
)
def test_extension_picks_the_codec(tmp_path: Path, suffix: str, codec_name: str | None) -> None:
    path = tmp_path / f"data.pkl{suffix}"
    value = {"x": np.arange(50_000.0), "y": np.arange(2000)}
    zoblib.dump(value, path)
    assert _codec_names(zoblib_record(path)) == {codec_name}
    assert_same_object(value, load_stored(path))


def test_explicit_compress_wins_over_the_extension(tmp_path: Path) -> None:
    zoblib.dump(np.arange(50_000.0), tmp_path / "data.gz", compress="zstd")
    assert _codec_names(zoblib_record(tmp_path / "data.gz")) == {"zstd"}


@pytest.mark.parametrize(
    ("compress", "cname"),
    [(True, "lz4"), (1, "lz4"), (3, "lz4"), (5, "lz4"), (6, "zstd"), (9, "zstd"), (("blosc", 7), "zstd")],
)
def test_true_and_levels_choose_blosc(tmp_path: Path, compress: Any, cname: str) -> None:
    path = tmp_path / "blosc.pkl"
    value = np.arange(100_000.0)
    zoblib.dump(value, path, compress=compress)
    codecs = [node["codec"] for node in zoblib_record(path)["nodes"].values()]
    assert all(c["name"] == "blosc" and c["configuration"]["cname"] == cname for c in codecs)
    level = 3 if compress is True else compress[1] if isinstance(compress, tuple) else compress
    assert all(c["configuration"]["clevel"] == level for c in codecs)
    assert_same_object(value, load_stored(path))


@pytest.mark.parametrize("compress", [0, False, ("zlib", 0), None])
def test_no_compression(tmp_path: Path, compress: Any) -> None:
    zoblib.dump(np.arange(100_000.0), tmp_path / "raw.pkl", compress=compress)
    assert _codec_names(zoblib_record(tmp_path / "raw.pkl")) == {None}


@pytest.mark.parametrize(
    ("compress", "codec_name"),
    [
        ("zlib", "numcodecs.zlib"),
        (("gzip", 6), "gzip"),
        (("bz2", 9), "numcodecs.bz2"),
        (("lzma", 6), "numcodecs.lzma"),
        (("xz", 6), "numcodecs.lzma"),
        (("lz4", 3), "numcodecs.lz4"),
        ("zstd", "zstd"),
        ("blosc", "blosc"),
        (numcodecs.Zstd(level=1), "zstd"),
        (numcodecs.Zlib(level=2), "numcodecs.zlib"),
    ],
    ids=repr,
)
def test_joblib_compress_forms(tmp_path: Path, compress: Any, codec_name: str) -> None:
    value = {"x": np.arange(50_000.0), "y": np.linspace(0, 1, 3000)}
    zoblib.dump(value, tmp_path / "c.pkl", compress=compress, inline_threshold=1024)
    assert _codec_names(zoblib_record(tmp_path / "c.pkl")) == {codec_name}
    assert_same_object(value, load_stored(tmp_path / "c.pkl"))


@pytest.mark.parametrize(
    "compress",
    ["nope", ("zlib", 10), ("zlib", -1), ("zlib", 1.5), ("zlib",), 10, -1, 1.5, object(), ("zlib", True)],
    ids=repr,
)
def test_invalid_compress_raises_compression_error(tmp_path: Path, compress: Any) -> None:
    with pytest.raises(zoblib.CompressionError):
        zoblib.dump(np.arange(10), tmp_path / "bad.pkl", compress=compress)
    assert not (tmp_path / "bad.pkl").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("compress", "message"),
    [
        (-1, 'Non valid compress level given: "-1"'),
        (10, 'Non valid compress level given: "10"'),
        ({}, 'Non valid compress level given: "{}"'),
        (("zlib", 3, "extra"), "Compress argument tuple should contain exactly 2 elements"),
        (("wrong", 3), 'Non valid compression method given: "wrong"'),
        (("zlib", "wrong"), 'Non valid compress level given: "wrong"'),
    ],
    ids=repr,
)
def test_invalid_compress_messages_are_joblibs(tmp_path: Path, compress: Any, message: str) -> None:
    # joblib's own tests match these texts: code written for joblib may too.
    with pytest.raises(ValueError) as info:
        zoblib.dump("dummy", tmp_path / "bad.pkl", compress=compress)
    assert str(info.value).startswith(message)
    with pytest.raises(ValueError, match="Compressor name should be a string"):
        zoblib.register_compressor(1, numcodecs.Zlib(1))  # type: ignore[arg-type]


def test_register_compressor(tmp_path: Path) -> None:
    name = f"test-zlib-{uuid.uuid4().hex[:8]}"
    levels: list[int] = []

    def factory(level: int) -> numcodecs.abc.Codec:
        levels.append(level)
        return numcodecs.Zlib(level=level)

    zoblib.register_compressor(name, factory)
    value = np.arange(50_000.0)
    zoblib.dump(value, tmp_path / "r.pkl", compress=(name, 7))
    assert levels == [7]
    [codec] = [
        node["codec"]
        for path, node in zoblib_record(tmp_path / "r.pkl")["nodes"].items()
        if path != "skeleton"
    ]
    assert codec == {"name": "numcodecs.zlib", "configuration": {"level": 7}}
    assert_same_object(value, load_stored(tmp_path / "r.pkl"))

    with pytest.raises(zoblib.CompressionError, match="already registered"):
        zoblib.register_compressor(name, numcodecs.BZ2(1))
    zoblib.register_compressor(name, numcodecs.BZ2(1), force=True)
    zoblib.dump(value, tmp_path / "s.pkl", compress=name)
    assert _codec_names(zoblib_record(tmp_path / "s.pkl")) == {"numcodecs.bz2"}
    assert_same_object(value, load_stored(tmp_path / "s.pkl"))


@pytest.mark.parametrize("compressor", ["not a codec", 3, None])
def test_register_compressor_rejects_non_codecs(compressor: Any) -> None:
    with pytest.raises(zoblib.CompressionError):
        zoblib.register_compressor(f"bad-{uuid.uuid4().hex[:8]}", compressor)


def test_unknown_compressor_lists_the_known_ones(tmp_path: Path) -> None:
    name = f"listed-{uuid.uuid4().hex[:8]}"
    zoblib.register_compressor(name, numcodecs.Zlib(1))
    with pytest.raises(zoblib.CompressionError) as info:
        zoblib.dump(np.arange(10), tmp_path / "x.pkl", compress="no-such-codec")
    message = str(info.value)
    assert "no-such-codec" in message
    for known in ("zlib", "gzip", "bz2", "lzma", "xz", "lz4", "zstd", "blosc", name):
        assert known in message


def test_hdf5_packs_keep_structured_dtypes_exactly(tmp_path: Path) -> None:
    dtype = np.dtype([("f0", [("f0", "S8", (1,))]), ("f1", "<f8")])
    value = [np.zeros(3, dtype)]
    zoblib.dump(value, tmp_path / "x.h5", compress="zlib", inline_threshold=0)
    loaded = load_stored(tmp_path / "x.h5")[0]
    assert loaded.dtype.descr == dtype.descr
