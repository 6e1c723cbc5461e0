"""Arrays are stored under names that say where they sit in the object, readable without zoblib."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

import zoblib
from zoblib.archive.naming import array_locations, memory_key, node_names, safe_component


class Layer:
    def __init__(self, rows: int) -> None:
        self.W = np.full((rows, 300), float(rows))
        self.b = np.zeros(300)


class ByReduce:
    """Reaches its array only through ``__reduce__``: no path can name it."""

    def __init__(self, values: np.ndarray[Any, Any]) -> None:
        self._hidden = [values]

    def __reduce__(self) -> tuple[Any, ...]:
        return ByReduce, (self._hidden[0],)

    def __getstate__(self) -> Any:
        raise TypeError("no state to show")


def _model() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    return {
        "weights": rng.standard_normal((1000, 300)),  # 2.4 MB: a real array of its own
        "layers": [Layer(1000), Layer(1200)],
        "odd key/with slash": np.arange(200_000.0),
        "mid": [np.arange(20_000.0) + i for i in range(3)],  # 160 kB each: packed
        "hidden": ByReduce(np.ones(300_000)),
    }


def _arrays(group: Any) -> dict[str, Any]:
    return {name: node for name, node in group.members(max_depth=None) if isinstance(node, zarr.Array)}


@pytest.mark.parametrize("suffix", [".zarr", ".pkl"])
def test_zarr_python_sees_named_arrays_in_their_real_shapes(tmp_path: Path, suffix: str) -> None:
    model = _model()
    path = tmp_path / f"model{suffix}"
    zoblib.dump(model, path, compress=3)
    store: Any = zarr.storage.ZipStore(path, mode="r") if suffix == ".pkl" else path
    arrays = _arrays(zarr.open_group(store, mode="r"))
    assert {"arrays/weights", "arrays/layers/0/W", "arrays/layers/1/W", "arrays/odd_key_with_slash"} <= set(
        arrays
    )
    np.testing.assert_array_equal(arrays["arrays/weights"][...], model["weights"])
    np.testing.assert_array_equal(arrays["arrays/layers/1/W"][...], model["layers"][1].W)
    assert arrays["arrays/layers/0/W"].attrs["zoblib"]["path"] == ["layers", 0, "W"]
    assert arrays["arrays/odd_key_with_slash"].attrs["zoblib"]["path"] == ["odd key/with slash"]
    # An array reached only through a custom __reduce__ gets its number.
    numbered = [name for name in arrays if name.startswith("arrays/") and name[7:].isdigit()]
    assert len(numbered) == 1
    np.testing.assert_array_equal(arrays[numbered[0]][...], np.ones(300_000))
    loaded = zoblib.load(path)
    np.testing.assert_array_equal(loaded["layers"][0].W, model["layers"][0].W)


def test_h5py_sees_the_same_names(tmp_path: Path) -> None:
    model = _model()
    path = tmp_path / "model.h5"
    zoblib.dump(model, path)
    with h5py.File(path, "r") as file:
        np.testing.assert_array_equal(file["arrays/layers/1/W"][...], model["layers"][1].W)
        assert file["arrays/weights"].shape == (1000, 300)


def test_packs_carry_an_index_of_their_named_members(tmp_path: Path) -> None:
    model = _model()
    path = tmp_path / "model.zarr"
    zoblib.dump(model, path)
    group = zarr.open_group(path, mode="r")
    record = group.attrs["zoblib"]
    packed = {ref["name"]: ref for ref in record["refs"] if "offset" in ref}
    assert {"mid/0", "mid/1", "mid/2"} <= set(packed)
    pack = group[packed["mid/1"]["node"]]
    members = {m["name"]: m for m in pack.attrs["zoblib"]["members"]}
    entry = members["mid/1"]
    assert entry["dtype"] == "<f8" and entry["order"] == "C"
    # A reader without zoblib cuts the member out with the index alone.
    flat = pack[entry["offset"] : entry["offset"] + int(np.prod(entry["shape"]))]
    np.testing.assert_array_equal(flat.reshape(entry["shape"]), model["mid"][1])


def test_record_and_node_names_agree(tmp_path: Path) -> None:
    path = tmp_path / "model.zarr"
    zoblib.dump(_model(), path)
    record = json.loads((path / "zarr.json").read_text())["attributes"]["zoblib"]
    for node_path in record["nodes"]:
        assert (path / node_path / "zarr.json").is_file()


def test_scikit_learn_trees_arrays_are_named(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(2000, 10, random_state=0)
    forest = RandomForestClassifier(5, random_state=0).fit(X, y)
    path = tmp_path / "forest.zarr"
    zoblib.dump(forest, path, inline_threshold=1024)
    record = json.loads((path / "zarr.json").read_text())["attributes"]["zoblib"]
    names = {ref.get("name") or ref["node"].removeprefix("arrays/") for ref in record["refs"]}
    # Tree builds fresh views of its buffers when pickled: matched by memory, not identity.
    assert {"estimators_/0/tree_/nodes", "estimators_/4/tree_/values"} <= names
    np.testing.assert_array_equal(zoblib.load(path).predict(X), forest.predict(X))


# ---- the naming functions ------------------------------------------------------------------


def test_names_are_unique_and_prefix_free() -> None:
    names = node_names([("a b",), ("a_b",), ("a",), ("a", "W"), None, ("c",), ("a", "W"), ("x", "y"), ("x",)])
    assert names == ["a_b", "a_b~2", "a", "a~2/W", None, "_c", "a~2/W~2", "x/y", "x~2"]
    real = [n for n in names if n]
    for name in real:
        assert not any(other.startswith(name + "/") for other in real)


@pytest.mark.parametrize(
    ("component", "safe"),
    [
        ("zarr.json", "_zarr.json"),
        ("..", "_.."),
        ("", "_"),
        ("ü/x y", "__x_y"),
        (3, "3"),
        ("x" * 300, "x" * 100),
    ],
)
def test_safe_components(component: Any, safe: str) -> None:
    assert safe_component(component) == safe


def test_locations_follow_keys_attributes_and_state_and_survive_cycles() -> None:
    shared = np.ones(10)
    value: dict[str, Any] = {"first": {"x": shared}, "layer": Layer(2), "again": shared}
    value["self"] = value
    locations = array_locations(value)
    assert locations.path_of(shared) == ("first", "x")
    assert locations.path_of(value["layer"].b) == ("layer", "b")
    # A fresh view over the same memory is the same array to the names.
    assert locations.path_of(shared[:]) == ("first", "x")
    assert locations.path_of(np.ones(10)) is None


def test_locations_match_views_of_a_buffer_made_afresh_for_each_pickle() -> None:
    buffer = np.arange(12.0)

    class FreshViews:  # as scikit-learn's Tree: its state holds new views each time
        def __getstate__(self) -> dict[str, Any]:
            return {"values": buffer.reshape(3, 4)}

    locations = array_locations({"tree": FreshViews()})
    view = buffer.reshape(3, 4)
    assert memory_key(view) == memory_key(buffer.reshape(3, 4))
    assert locations.path_of(view) == ("tree", "values")
    assert locations.path_of(buffer) is None  # other shape: another array
