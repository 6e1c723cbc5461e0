"""zoblib reads joblib's files on a machine without joblib: a fresh interpreter where
``import joblib`` fails loads files the real joblib wrote, and sends back what it loaded."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import joblib
import numpy as np
from joblib_helpers import COMPRESSORS, JOBLIB_DATA, NO_JOBLIB, assert_alike, many_arrays, run_python

_LOAD = (
    NO_JOBLIB
    + r"""
import pickle, sys, warnings
import numpy as np
import zoblib

try:
    import joblib
except ImportError:
    pass
else:
    raise SystemExit("joblib could be imported")
out, paths = sys.argv[1], sys.argv[2:]
warnings.simplefilter("ignore")
loaded = {}
for path in paths:
    loaded[path] = zoblib.load(path)
    mapped = zoblib.load(path, mmap_mode="r")
    if path.endswith("uncompressed.pkl"):
        assert isinstance(mapped["big"], np.memmap), type(mapped["big"])
    with open(path, "rb") as file:  # a file object too
        zoblib.load(file)
assert sys.modules["joblib"] is None, "zoblib imported joblib"
with open(out, "wb") as file:
    pickle.dump(loaded, file)
"""
)


def test_joblib_files_load_without_joblib(tmp_path: Path) -> None:
    value = many_arrays()
    paths = [tmp_path / "uncompressed.pkl"]
    joblib.dump(value, paths[0])
    for compressor in COMPRESSORS:
        paths.append(tmp_path / f"{compressor}.pkl")
        joblib.dump(value, paths[-1], compress=(compressor, 3))
    assert JOBLIB_DATA is not None
    legacy = [
        "joblib_0.9.2_pickle_py35_np19.pkl",
        "joblib_0.9.2_compressed_pickle_py35_np19.gz",
        "joblib_0.10.0_pickle_py35_np19.pkl.xz",
        "joblib_0.11.0_compressed_pickle_py36_np111.gz",
    ]
    paths += [JOBLIB_DATA / name for name in legacy]
    out = tmp_path / "loaded.pickle"
    done = run_python(_LOAD, str(out), *map(str, paths))
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out, "rb") as file:
        loaded = pickle.load(file)
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = joblib.load(path)
        assert_alike(loaded[str(path)], expected, path.name)
        if path.parent == tmp_path:
            assert type(loaded[str(path)]["matrix"]) is np.matrix
