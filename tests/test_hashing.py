"""Tests of ``zoblib.hashing``: determinism, order, near-collisions, arrays, memmaps, digests."""

from __future__ import annotations

import collections
import copy
import functools
import hashlib
import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zoblib.errors import HashingError
from zoblib.hashing import HASH_ALGORITHMS, array_digest, hash
from zoblib.hashing import arrays as hashing_arrays
from zoblib.hashing import pickler as hashing_pickler

# ---------------------------------------------------------------------------------------------
# Determinism across processes and hash seeds

_CHILD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from zoblib.hashing import hash

    def scale(x, factor=2):
        return [v * factor for v in x if v not in {"a", "b", "c"}]

    def make_adder(n):
        return lambda x: x + n

    words = [f"word{i}" for i in range(50)]
    objects = {
        "dict_of_str": {w: w.upper() for w in words},
        "set_of_str": set(words),
        "frozenset_of_str": frozenset(words),
        "frozenset_of_frozensets": frozenset(frozenset(words[i : i + 3]) for i in range(20)),
        "mixed_keys": {1: "a", "b": 2, (3,): None, frozenset({"x", "y"}): {"z"}},
        "nested": {"k": [set(words[:5]), {"inner": frozenset(words[5:9])}, (1, 2.5, b"x")]},
        "array": np.arange(1000, dtype=np.float64).reshape(10, 100),
        "f_array": np.asfortranarray(np.arange(12).reshape(3, 4)),
        "structured": np.zeros(3, dtype=[("name", "U4"), ("value", "<f8")]),
        "object_array": np.array([set(words[:3]), "s", 1], dtype=object),
        "scalars": [np.float32(1.5), np.int64(7), np.dtype(">i4")],
        "function": scale,
        "closure": make_adder(3),
        "lambda": lambda x: {x: "y"},
        "class": dict,
    }
    json.dump({name: hash(obj) for name, obj in objects.items()}, sys.stdout)
    """
)


def _run_child(seed: str, script: str = _CHILD_SCRIPT) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    result: dict[str, str] = json.loads(done.stdout)
    return result


def test_same_hashes_in_subprocesses_with_different_hash_seeds() -> None:
    runs = [_run_child(seed) for seed in ("0", "1", "4242")]
    assert runs[0] == runs[1] == runs[2]
    assert len(set(runs[0].values())) == len(runs[0])  # and they are all different


def test_changed_function_body_changes_hash_across_processes() -> None:
    template = "from zoblib.hashing import hash\ndef f(x):\n    return x + {}\nprint(hash(f))"
    first = subprocess.run(
        [sys.executable, "-c", template.format(1)], capture_output=True, text=True, check=True
    )
    again = subprocess.run(
        [sys.executable, "-c", template.format(1)], capture_output=True, text=True, check=True
    )
    changed = subprocess.run(
        [sys.executable, "-c", template.format(2)], capture_output=True, text=True, check=True
    )
    assert first.stdout == again.stdout != changed.stdout


def test_golden_values_do_not_change_by_accident() -> None:
    # Changing these changes every cache key: bump the header in pickler.py when it is meant.
    assert hash(None) == "c021214d254d167af08c1274a0c7f53d"
    assert hash([1, "a", b"b", 2.5, None, (True,)]) == "d631f59f0534e1d9e77ef75f05d0dcfd"
    assert hash({"a": [1, 2.5], "b": None}) == "8adb9a7e5daad0fdd8346ec5de14697b"
    assert hash(np.arange(3, dtype="<i8")) == "6bc2b9fba79fba93a3bc6ee1482119ae"
    assert hash(None, hash_name="md5") == "cf90bc113f360f79735dced1ac4ad0b3"


# ---------------------------------------------------------------------------------------------
# Order (in)sensitivity and value semantics


@pytest.mark.parametrize(
    "items",
    [
        [("a", 1), ("b", 2), ("c", 3)],
        [(3, "x"), (1, "y"), (2, "z")],
        [(1, "a"), ("b", 2), ((3,), None)],
        [(1.5, 0), (None, 1), (b"k", 2), (frozenset({1}), 3), (True, 4)],
    ],
)
def test_dicts_ignore_insertion_order(items: list[tuple[Any, Any]]) -> None:
    assert hash(dict(items)) == hash(dict(reversed(items)))
    assert hash(dict(items)) != hash(dict(items[:-1]))


def test_dict_key_and_value_pairing_matters() -> None:
    assert hash({"a": 1, "b": 2}) != hash({"a": 2, "b": 1})
    assert hash({1: "a", "b": 2}) != hash({1: 2, "b": "a"})


def test_sets_ignore_order_also_with_unorderable_elements() -> None:
    words = [f"w{i}" for i in range(100)]
    assert hash(set(words)) == hash(set(reversed(words)))
    mixed = [1, "b", (3,), None, 2.5, frozenset({"x"})]
    assert hash(set(mixed)) == hash(set(reversed(mixed)))
    assert hash(frozenset(mixed)) == hash(frozenset(reversed(mixed)))
    assert hash(set(mixed)) != hash(frozenset(mixed))
    assert hash(set(words)) != hash(set(words[1:]))


def test_frozensets_of_frozensets_ignore_order() -> None:
    # ``sorted`` is not deterministic here (subset order is partial): digests order them.
    parts = [frozenset({i, i + 1}) for i in range(30)]
    assert hash(set(parts)) == hash(set(reversed(parts)))


class _TaggedSet(set[Any]):
    pass


def test_set_subclasses_ignore_order_and_keep_their_class() -> None:
    words = [f"w{i}" for i in range(20)]
    assert hash(_TaggedSet(words)) == hash(_TaggedSet(reversed(words)))
    assert hash(_TaggedSet(words)) != hash(set(words))


def test_dict_subclasses() -> None:
    pairs = [("a", 1), ("b", 2)]
    assert hash(collections.defaultdict(list, pairs)) == hash(collections.defaultdict(list, reversed(pairs)))
    assert hash(collections.defaultdict(list, pairs)) != hash(collections.defaultdict(int, pairs))
    assert hash(collections.defaultdict(list, pairs)) != hash(dict(pairs))
    assert hash(collections.Counter("abracadabra")) == hash(collections.Counter("aaaaabbrrcd"))
    # An OrderedDict's order is part of its value, as in ==.
    assert hash(collections.OrderedDict(pairs)) != hash(collections.OrderedDict(reversed(pairs)))


def test_lists_and_tuples_keep_order() -> None:
    assert hash([1, 2, 3]) != hash([3, 2, 1])
    assert hash((1, 2, 3)) != hash((3, 2, 1))
    assert hash([1, 2, 3]) != hash((1, 2, 3))


def test_numbers_of_different_types_differ() -> None:
    assert len({hash(1), hash(1.0), hash(True), hash(np.int64(1)), hash(np.float64(1.0))}) == 5


def test_equal_values_hash_alike_whatever_their_identity() -> None:
    assert hash(["aa", "aa"]) == hash(["aa", "aaZ"[:2]])
    inner = {"k": [1, 2]}
    assert hash([inner, inner]) == hash([inner, copy.deepcopy(inner)])
    arr = np.arange(5)
    assert hash([arr, arr]) == hash([arr, arr.copy()])


def test_self_referencing_objects() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    other: list[Any] = [1]
    other.append(other)
    assert hash(loop) == hash(other) == hash(copy.deepcopy(loop))
    node: dict[str, Any] = {"name": "a"}
    node["self"] = node
    renamed: dict[str, Any] = {"name": "b"}
    renamed["self"] = renamed
    assert hash(node) == hash(copy.deepcopy(node)) != hash(renamed)


def test_too_deeply_nested_raises_hashing_error() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(HashingError, match="nested too deeply"):
        hash(deep)


# ---------------------------------------------------------------------------------------------
# Arrays


def test_array_digest_is_defined_on_c_order_bytes() -> None:
    arr = np.arange(24, dtype="<i4").reshape(2, 3, 4)
    for view in (arr, arr.T, arr[:, ::2], arr[::-1], np.asfortranarray(arr)):
        data = np.ascontiguousarray(view).tobytes()
        assert array_digest(view) == "xxh3_128:" + xxhash.xxh3_128(data).hexdigest()
        assert array_digest(view, hash_name="md5") == "md5:" + hashlib.md5(data).hexdigest()


def test_array_digest_refuses_object_arrays() -> None:
    with pytest.raises(HashingError, match="object"):
        array_digest(np.array([1, "a"], dtype=object))


_LAYOUT_BASE = np.random.default_rng(0).standard_normal((20, 30, 8))
_LAYOUTS = {
    "transposed": _LAYOUT_BASE.T,
    "fortran": np.asfortranarray(_LAYOUT_BASE),
    "step": _LAYOUT_BASE[::3, 1::2],
    "reversed": _LAYOUT_BASE[::-1, :, ::-1],
    "swapped": _LAYOUT_BASE.swapaxes(1, 2),
    "column": _LAYOUT_BASE[:, 4, 2],
    "fortran_2d": np.asfortranarray(_LAYOUT_BASE.reshape(60, 80)),
}


@pytest.mark.parametrize("block_nbytes", [64, 1000, 8 * 2**20])
@pytest.mark.parametrize("name", sorted(_LAYOUTS))
def test_non_contiguous_views_hash_as_their_contiguous_copy(
    name: str, block_nbytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small blocks drive the row-by-row and tiled copies on small arrays.
    monkeypatch.setattr(hashing_arrays, "_BLOCK_NBYTES", block_nbytes)
    monkeypatch.setattr(hashing_arrays, "_TILE_COLUMNS", 3)
    view = _LAYOUTS[name]
    assert not view.flags.c_contiguous
    assert hash(view) == hash(np.ascontiguousarray(view))
    assert array_digest(view) == array_digest(np.ascontiguousarray(view))


def test_fortran_and_c_copies_of_the_same_values_hash_alike() -> None:
    arr = np.arange(12.0).reshape(3, 4)
    assert hash(arr) == hash(np.asfortranarray(arr))


def _padded_records(count: int, garbage: bool) -> np.ndarray[Any, Any]:
    """Records with 7 padding bytes after ``a``: random ones, or zeros."""
    dtype = np.dtype([("a", "u1"), ("b", "<f8"), ("c", [("d", "<i2"), ("e", "u1")], (2,))], align=True)
    raw = np.random.default_rng(7).integers(0, 256, count * dtype.itemsize, dtype=np.uint8)
    noisy = raw.view(dtype)
    if garbage:
        return noisy
    clean = np.zeros(count, dtype=dtype)
    for name in dtype.names or ():
        clean[name] = noisy[name]
    return clean


def test_padding_bytes_of_structured_arrays_are_left_out() -> None:
    noisy, clean = _padded_records(40, garbage=True), _padded_records(40, garbage=False)
    assert noisy.tobytes() != clean.tobytes()  # same values, different padding
    assert hash(noisy) == hash(clean) == hash(noisy.copy()) == hash(noisy[::-1][::-1])
    assert hash(noisy[::3]) == hash(clean[::3])
    assert hash(noisy[5]) == hash(clean[5])  # np.void scalars
    # The same fields declared without align=True: packed one after another, nested ones too.
    packed = np.zeros(40, dtype=[("a", "u1"), ("b", "<f8"), ("c", [("d", "<i2"), ("e", "u1")], (2,))])
    packed["a"], packed["b"], packed["c"] = clean["a"], clean["b"], clean["c"]
    assert packed.dtype.itemsize == 15
    assert array_digest(noisy) == "xxh3_128:" + xxhash.xxh3_128(packed.tobytes()).hexdigest()
    changed = clean.copy()
    changed["c"][3, 1]["e"] += 1
    assert hash(changed) != hash(clean)


def test_one_changed_element_in_a_million_changes_the_hash() -> None:
    arr = np.random.default_rng(1).standard_normal(1_000_000)
    changed = arr.copy()
    changed[500_000] = np.nextafter(changed[500_000], np.inf)
    assert hash(arr) != hash(changed)
    last = arr.copy()
    last[-1] += 1
    assert hash(arr) != hash(last)


def test_same_bytes_under_another_dtype_or_shape_differ() -> None:
    arr = np.arange(16, dtype="<i8")
    variants = [
        arr,
        arr.view("<f8"),
        arr.view(">i8"),
        arr.view("<u8"),
        arr.view("<i4"),
        arr.view("<M8[ns]"),
        arr.reshape(4, 4),
        arr.reshape(2, 8),
        arr.reshape(4, 4).T,
    ]
    assert len({hash(v) for v in variants}) == len(variants)


def test_transposed_square_array_differs() -> None:
    arr = np.arange(9.0).reshape(3, 3)
    assert hash(arr) != hash(arr.T)
    assert hash(arr.T) == hash(np.ascontiguousarray(arr.T))


def test_empty_and_zero_dimensional_arrays() -> None:
    shapes = [(0,), (0, 3), (3, 0), (), (1,)]
    assert len({hash(np.zeros(shape)) for shape in shapes}) == len(shapes)
    assert hash(np.array(1.0)) != hash(np.float64(1.0))


def test_dtypes_that_name_the_same_type_alike() -> None:
    assert hash(np.zeros(3, dtype=np.longlong)) == hash(np.zeros(3, dtype=np.int64))
    assert hash(np.dtype("f8")) == hash(np.dtype(np.float64))
    round_tripped = pickle.loads(pickle.dumps(np.dtype("f4")))
    assert hash([np.dtype("f4"), np.dtype("f4")]) == hash([np.dtype("f4"), round_tripped])
    assert hash(np.dtype("<f8")) != hash(np.dtype(">f8"))


def test_structured_dtypes() -> None:
    base = np.dtype([("x", "<f8"), ("y", "<i4")])
    others = [
        np.dtype([("x", "<f8"), ("z", "<i4")]),
        np.dtype([("x", "<f8"), ("y", ">i4")]),
        np.dtype([("y", "<i4"), ("x", "<f8")]),
        np.dtype([("x", "<f8"), ("y", "<i4")], align=True),
        np.dtype([("x", "<f8"), ("y", "<i4", (2,))]),
        np.dtype({"names": ["x", "y"], "formats": ["<f8", "<i4"], "titles": ["t", None]}),
    ]
    assert hash(base) == hash(np.dtype([("x", "<f8"), ("y", "<i4")]))
    assert len({hash(dt) for dt in [base, *others]}) == 1 + len(others)
    arr = np.zeros(4, dtype=base)
    assert hash(arr) == hash(pickle.loads(pickle.dumps(arr)))
    assert hash(arr) != hash(np.zeros(4, dtype=others[0]))


def test_numpy_scalars() -> None:
    assert hash(np.float64(1.5)) == hash(np.float64(1.5))
    assert hash(np.float64(1.5)) != hash(np.float32(1.5))
    assert hash(np.float64(1.5)) != hash(1.5)
    assert hash(np.datetime64("2024-01-01")) != hash(np.datetime64("2024-01-02"))
    assert hash(np.str_("ab")) == hash(np.str_("".join(["a", "b"])))
    assert hash(np.str_("ab")) != hash("ab")


def test_object_arrays_hash_element_by_element() -> None:
    def build() -> np.ndarray[Any, Any]:
        return np.array([{"a": 1}, "text", [1, 2], None], dtype=object)

    assert hash(build()) == hash(build())  # different element objects, equal values
    changed = build()
    changed[0] = {"a": 2}
    assert hash(build()) != hash(changed)
    assert hash(build()) != hash([{"a": 1}, "text", [1, 2], None])
    strings = np.array(["a", "bb"], dtype=np.dtypes.StringDType())
    assert hash(strings) == hash(np.array(["a", "b" + "b"], dtype=np.dtypes.StringDType()))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_array_subclasses_keep_their_class() -> None:
    arr = np.arange(4.0).reshape(2, 2)
    assert hash(np.asmatrix(arr)) != hash(arr)
    masked = np.ma.masked_array(arr, mask=[[0, 1], [0, 0]])
    assert hash(masked) != hash(arr)
    assert hash(masked) == hash(np.ma.masked_array(arr.copy(), mask=[[0, 1], [0, 0]]))
    assert hash(masked) != hash(np.ma.masked_array(arr, mask=[[1, 0], [0, 0]]))
    assert hash(np.ma.masked) == hash(np.ma.masked) != hash(np.ma.masked_array(0.0, mask=True))


# ---------------------------------------------------------------------------------------------
# Memmaps, recorded digests and lazy arrays


def _memmap(path: Path, arr: np.ndarray[Any, Any], mode: str = "r") -> np.memmap[Any, Any]:
    arr.tofile(path)
    return np.memmap(path, dtype=arr.dtype, mode=mode, shape=arr.shape)


@pytest.mark.parametrize("coerce_mmap", [False, True])
def test_memmap_hashes_as_the_array(tmp_path: Path, coerce_mmap: bool) -> None:
    arr = np.random.default_rng(2).standard_normal((50, 40))
    mapped = _memmap(tmp_path / "a.bin", arr)
    assert not hasattr(mapped, "zoblib_digest")
    assert hash(mapped, coerce_mmap=coerce_mmap) == hash(arr, coerce_mmap=coerce_mmap)
    assert hash({"x": mapped}) == hash({"x": arr})
    assert hash(mapped[::2, 1:]) == hash(arr[::2, 1:])


def test_recorded_digest_stands_for_the_data(tmp_path: Path) -> None:
    arr = np.arange(1000.0)
    mapped = _memmap(tmp_path / "a.bin", arr)
    mapped.zoblib_digest = array_digest(arr)  # type: ignore[attr-defined]
    assert hash(mapped) == hash(arr)
    # A digest that does not match the content is believed: so the data was not read.
    other = arr + 1
    mapped.zoblib_digest = array_digest(other)  # type: ignore[attr-defined]
    assert hash(mapped) == hash(other) != hash(arr)
    # Another algorithm cannot use an XXH3 digest: the data is read.
    assert hash(mapped, hash_name="md5") == hash(arr, hash_name="md5")


def test_recorded_digest_means_no_data_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arr = np.arange(1000.0)
    mapped = _memmap(tmp_path / "a.bin", arr)
    mapped.zoblib_digest = array_digest(arr)  # type: ignore[attr-defined]
    expected = hash(arr)

    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("array data was read")

    monkeypatch.setattr(hashing_pickler, "array_digest", refuse)
    assert hash(mapped) == expected
    with pytest.raises(AssertionError, match="was read"):
        hash(arr)


def test_views_of_a_memmap_do_not_inherit_its_digest(tmp_path: Path) -> None:
    arr = np.arange(100.0)
    mapped = _memmap(tmp_path / "a.bin", arr)
    mapped.zoblib_digest = "xxh3_128:" + "0" * 32  # type: ignore[attr-defined]
    for view in (mapped[:], mapped[...], mapped[::-1], mapped.reshape(10, 10), mapped.view()):
        assert not hasattr(view, "zoblib_digest")
    assert hash(mapped[::-1]) == hash(arr[::-1])
    assert hash(mapped[:]) == hash(arr)


def test_writable_memmap_ignores_a_recorded_digest(tmp_path: Path) -> None:
    arr = np.arange(100.0)
    mapped = _memmap(tmp_path / "a.bin", arr, mode="r+")
    mapped.zoblib_digest = array_digest(arr + 1)  # type: ignore[attr-defined]
    assert hash(mapped) == hash(arr)


class _StandInLazyArray:
    """What zoblib's lazy arrays offer the hasher: shape, dtype, __array__, zoblib_digest."""

    def __init__(self, values: np.ndarray[Any, Any], digest: str | None) -> None:
        self._values = values
        self.shape = values.shape
        self.dtype = values.dtype
        self.zoblib_digest = digest
        self.reads = 0

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        self.reads += 1
        return self._values


def test_lazy_array_with_digest_hashes_as_the_array_without_reading() -> None:
    arr = np.random.default_rng(3).standard_normal((30, 7))
    lazy = _StandInLazyArray(arr, array_digest(arr))
    assert hash(lazy) == hash(arr)
    assert hash({"a": [lazy]}) == hash({"a": [arr]})
    assert lazy.reads == 0
    assert hash(lazy, hash_name="sha1") == hash(arr, hash_name="sha1")
    assert lazy.reads == 1


def test_lazy_array_without_digest_reads_its_data() -> None:
    arr = np.arange(10, dtype="<i2")
    lazy = _StandInLazyArray(arr, None)
    assert hash(lazy) == hash(arr)
    assert lazy.reads == 1


def test_memmap_lazy_and_in_memory_arrays_hash_alike(tmp_path: Path) -> None:
    arr = np.random.default_rng(4).standard_normal((64, 16))
    digest = array_digest(arr)
    mapped = _memmap(tmp_path / "a.bin", arr)
    mapped.zoblib_digest = digest  # type: ignore[attr-defined]
    plain_mapped = _memmap(tmp_path / "b.bin", arr)
    hashes = {
        hash(arr),
        hash(mapped),
        hash(plain_mapped),
        hash(_StandInLazyArray(arr, digest)),
        hash(_StandInLazyArray(arr, None)),
    }
    assert len(hashes) == 1


@pytest.mark.parametrize("compress", [0, 3])
@pytest.mark.parametrize("order", ["C", "F"])
def test_arrays_loaded_from_an_archive_hash_as_in_memory(tmp_path: Path, order: str, compress: int) -> None:
    archive = pytest.importorskip("zoblib.archive.api")
    arr = np.asarray(np.random.default_rng(5).standard_normal((300, 200)), order=order)
    archive.dump({"x": arr, "y": [arr[::2]]}, tmp_path / "a.zip", compress=compress)
    loaded = archive.load(tmp_path / "a.zip", mmap_mode="r")
    # compress=0 gives np.memmap, compress=3 zoblib's lazy arrays: both hash as the arrays.
    assert isinstance(loaded["x"], np.memmap) == (compress == 0)
    assert hash(loaded) == hash({"x": arr, "y": [arr[::2]]})


@pytest.mark.parametrize("compress", [0, 3])
def test_archive_records_the_digest_hash_uses(tmp_path: Path, compress: int) -> None:
    archive = pytest.importorskip("zoblib.archive.api")
    arr = np.asfortranarray(np.random.default_rng(6).standard_normal((300, 200)))
    archive.dump(arr, tmp_path / "a.zarr", compress=compress)
    loaded = archive.load(tmp_path / "a.zarr", mmap_mode="r")
    if getattr(loaded, "zoblib_digest", None) is None:
        pytest.skip("zoblib.archive's dump does not record zoblib_digest (array_digest) yet")
    assert loaded.zoblib_digest == array_digest(arr)
    assert hash(loaded) == hash(arr)


# ---------------------------------------------------------------------------------------------
# Functions, methods, classes


def _double(x: int) -> int:
    return x * 2


def _triple(x: int) -> int:
    return x * 3


def _make_adder(n: int) -> Any:
    return lambda x: x + n


class _Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def norm(self) -> int:
        return abs(self.x)


def test_functions_hash_by_code() -> None:
    assert hash(_double) == hash(_double)
    assert hash(_double) != hash(_triple)
    namespace_a: dict[str, Any] = {}
    namespace_b: dict[str, Any] = {}
    exec("def f(x):\n    return x + 1", namespace_a)
    exec("\n\n\ndef f(x):\n    return x + 1", namespace_b)  # moved down: same code
    assert hash(namespace_a["f"]) == hash(namespace_b["f"])
    exec("def f(x):\n    return x + 2", namespace_b)
    assert hash(namespace_a["f"]) != hash(namespace_b["f"])


def test_function_hash_is_stable_after_many_calls() -> None:
    before = hash(_double)
    for i in range(10_000):  # lets the interpreter specialise the bytecode
        _double(i)
    assert hash(_double) == before


def test_lambdas_and_closures() -> None:
    assert hash(_make_adder(1)) == hash(_make_adder(1))
    assert hash(_make_adder(1)) != hash(_make_adder(2))
    assert hash(lambda x: x + 1) != hash(lambda x: x - 1)

    def recursive(n: int) -> int:
        return 0 if n == 0 else recursive(n - 1)

    assert hash(recursive) == hash(recursive)


def test_partials_methods_and_classes() -> None:
    assert hash(functools.partial(_double, 1)) != hash(functools.partial(_double, 2))
    assert hash(_Point(1).norm) == hash(_Point(1).norm)
    assert hash(_Point(1).norm) != hash(_Point(2).norm)
    assert hash(_Point(3)) == hash(_Point(3)) != hash(_Point(4))
    assert hash(_Point) != hash(dict)
    assert hash(len) != hash(abs)

    class Local:
        pass

    assert hash(Local) == hash(Local)
    assert hash(Local()) == hash(Local())


# ---------------------------------------------------------------------------------------------
# Errors and algorithm names


def _generator() -> Any:
    yield 1


@pytest.mark.parametrize(
    ("make", "type_name"),
    [
        (threading.Lock, "lock"),
        (_generator, "generator"),
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), "socket"),
    ],
)
def test_unpicklable_objects_raise_hashing_error_naming_the_type(make: Any, type_name: str) -> None:
    obj = make()
    try:
        with pytest.raises(HashingError, match=type_name) as raised:
            hash({"nested": [1, obj]})
        assert isinstance(raised.value, TypeError)
    finally:
        if isinstance(obj, socket.socket):
            obj.close()


@pytest.mark.parametrize(
    ("hash_name", "length"),
    [("xxh3_128", 32), ("xxh3_64", 16), ("md5", 32), ("sha1", 40), ("sha256", 64)],
)
def test_all_hash_names(hash_name: str, length: int) -> None:
    obj = {"a": np.arange(10), "b": [1, "x"]}
    digest = hash(obj, hash_name=hash_name)
    assert len(digest) == length
    assert int(digest, 16) >= 0
    assert digest == hash(copy.deepcopy(obj), hash_name=hash_name)
    assert digest != hash({"a": np.arange(11), "b": [1, "x"]}, hash_name=hash_name)


def test_every_registered_algorithm_is_tested() -> None:
    assert set(HASH_ALGORITHMS) == {"xxh3_128", "xxh3_64", "md5", "sha1", "sha256"}


def test_unknown_hash_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'md5'.*'sha1'"):
        hash(1, hash_name="crc32")


# ---------------------------------------------------------------------------------------------
# Properties

# Native byte order only: numpy's pickle turns a '>i2' array into an '<i2' one, another dtype.
_SMALL_ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.dtype("<f8"), np.dtype("<i4"), np.dtype("<M8[s]"), np.dtype("u1")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | _SMALL_ARRAYS
)
_NESTED = st.recursive(
    _LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=4) | st.integers(), children, max_size=4)
        | st.frozensets(st.text(max_size=4) | st.integers(), max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(_NESTED)
def test_copies_hash_alike(obj: Any) -> None:
    digest = hash(obj)
    assert digest == hash(pickle.loads(pickle.dumps(obj)))
    assert digest == hash(copy.deepcopy(obj))


@given(st.deferred(lambda: _shared_strategies().arrays()))
def test_arrays_of_every_dtype_and_layout_hash_as_their_copies(arr: np.ndarray[Any, Any]) -> None:
    assert hash(arr) == hash(arr.copy(order="C")) == hash(copy.deepcopy(arr))
    if arr.ndim > 1:
        assert hash(arr) == hash(np.asfortranarray(arr))


@given(st.deferred(lambda: _shared_strategies().object_graphs()))
def test_object_graphs_hash_as_their_deep_copies(obj: Any) -> None:
    assert hash(obj) == hash(copy.deepcopy(obj))


def _shared_strategies() -> Any:
    return pytest.importorskip("zoblib.testing.strategies")


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(max_size=4) | st.integers() | st.tuples(st.integers()), _LEAVES))
def test_reversed_insertion_order_hashes_alike(mapping: dict[Any, Any]) -> None:
    assert hash(mapping) == hash(dict(reversed(list(mapping.items()))))


def test_unknown_hash_name_message_is_joblibs() -> None:
    with pytest.raises(ValueError, match="Valid options for 'hash_name' are") as info:
        hash({"foo": "bar"}, hash_name="invalid")
    assert "xxh3_128" in str(info.value) and "md5" in str(info.value)


def _without_padding(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The same fields, nested ones too, declared one after another."""
    if dtype.subdtype is not None:
        return np.dtype((_without_padding(dtype.subdtype[0]), dtype.subdtype[1]))
    if dtype.names is None or dtype.fields is None:
        return dtype
    return np.dtype([(name, _without_padding(dtype.fields[name][0])) for name in dtype.names])


@pytest.mark.parametrize(
    "dtype",
    [
        np.dtype([("a", "u1"), ("b", "<f8"), ("c", [("d", "<i2"), ("e", "u1")], (2,))], align=True),
        np.dtype({"names": ["x", "y"], "formats": ["<i4", "<f8"], "offsets": [12, 0], "itemsize": 24}),
        np.dtype([("a", "u1"), ("b", ">f8")], align=True),
        np.dtype([("s", [("a", "u1"), ("b", "<i4")], (3,))], align=True),
        # A scikit-learn tree node: 57 bytes of fields, 7 of padding.
        np.dtype(
            {
                "names": ["left", "right", "feature", "threshold", "impurity", "n", "w", "missing"],
                "formats": ["<i8", "<i8", "<i8", "<f8", "<f8", "<i8", "<f8", "u1"],
                "offsets": [0, 8, 16, 24, 32, 40, 48, 56],
                "itemsize": 64,
            }
        ),
    ],
)
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (200_000,)])
def test_padded_struct_digests_are_those_of_the_packed_copy(
    dtype: np.dtype[Any], shape: tuple[int, ...]
) -> None:
    count = int(np.prod(shape))
    raw = np.random.default_rng(3).integers(0, 256, count * dtype.itemsize, dtype=np.uint8)
    arr = raw.view(dtype).reshape(shape)
    packed = np.empty(shape, dtype=_without_padding(dtype))
    packed[...] = arr  # numpy's own field-by-field copy: the reference
    assert array_digest(arr) == "xxh3_128:" + xxhash.xxh3_128(packed.tobytes()).hexdigest()
