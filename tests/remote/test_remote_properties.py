"""Any array, any layout: the remote containers give back what was dumped, whole and sliced."""

from __future__ import annotations

import uuid
from typing import Any

import fsspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import zoblib
from zoblib.testing import assert_same_object
from zoblib.testing.strategies import arrays


@settings(max_examples=25)
@given(
    array=arrays(),
    container=st.sampled_from(["data.pkl", "data.zarr"]),
    compress=st.sampled_from([0, 3]),
    pack_threshold=st.sampled_from([0, 1 << 20]),
    data=st.data(),
)
def test_any_array_round_trips_and_slices(
    array: np.ndarray, container: str, compress: int, pack_threshold: int, data: Any
) -> None:
    root = f"memory://{uuid.uuid4().hex}"
    url = f"{root}/{container}"
    # No inlining: even small arrays become nodes of their own, or members of a pack.
    zoblib.dump({"a": array}, url, compress=compress, inline_threshold=0, pack_threshold=pack_threshold)
    try:
        assert_same_object({"a": array}, zoblib.load(url, ensure_native_byte_order=False))
        lazy = zoblib.load(url, mmap_mode="r")["a"]
        assert_same_object({"a": array}, {"a": np.asarray(lazy)}, lazy_arrays=True)
        if array.ndim:
            stop = data.draw(st.integers(0, array.shape[0]))
            start = data.draw(st.integers(0, stop))
            step = data.draw(st.integers(1, 3))
            expected = array[start:stop:step]
            assert lazy[start:stop:step].tobytes() == np.ascontiguousarray(expected).tobytes()
    finally:
        fsspec.filesystem("memory").rm(root.removeprefix("memory://"), recursive=True)
