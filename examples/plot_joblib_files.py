"""
Loading old joblib files
========================

``zoblib.load`` reads the files ``joblib.dump`` wrote, by their content, whatever their name
and without joblib installed: plain and compressed (zlib, gzip, bz2, lzma, xz, lz4), memory-mapped
when uncompressed, as joblib does. So ``zoblib.load`` can replace ``joblib.load`` on years of
``.joblib`` and ``.pkl`` files, and ``zoblib convert`` (or a ``load`` then ``dump``) turns them
into archives. Here joblib writes the files, as it would have years ago (a 4 MB array and a
scikit-learn model; older files from joblib 0.9 on load too).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression

import zoblib

workdir = tempfile.mkdtemp(prefix="zoblib-example-")
rng = np.random.default_rng(0)
X = rng.normal(size=(2000, 5))
y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
old = {
    "model": LogisticRegression().fit(X, y),
    "embedding": np.round(rng.normal(size=(500, 1000)), 3),  # 4 MB
    "notes": "trained in 2019",
}

files = {}
for compress in (0, 3, ("gzip", 3), ("bz2", 3), ("xz", 1), ("lz4", 3)):
    label = "uncompressed" if compress == 0 else str(compress)
    path = os.path.join(workdir, f"old-{len(files)}.joblib")
    joblib.dump(old, path, compress=compress)
    files[label] = path

# %%
# Every file loads with zoblib
# ----------------------------

timings = {}
for label, path in files.items():
    start = time.perf_counter()
    loaded = zoblib.load(path)
    timings[label] = time.perf_counter() - start
    assert np.array_equal(loaded["embedding"], old["embedding"])
    assert (loaded["model"].predict(X) == old["model"].predict(X)).all()
    print(f"{label:>14}: {os.path.getsize(path) / 1e6:5.1f} MB, loaded in {timings[label] * 1e3:5.0f} ms")

# %%
# Memory-mapped, as joblib maps it
# --------------------------------
# An uncompressed joblib file's arrays are mapped in place, as ``joblib.load(path,
# mmap_mode="r")`` maps them:

mapped = zoblib.load(files["uncompressed"], mmap_mode="r")["embedding"]
print(type(mapped).__name__, os.path.basename(mapped.filename), "offset", mapped.offset)

# %%
# Converting to an archive
# ------------------------
# ``zoblib convert IN OUT`` turns a joblib file into an archive (after which the array is a Zarr
# array with checksums, readable lazily, and by zarr and h5py):

archive = os.path.join(workdir, "converted.pkl")
done = subprocess.run(
    [sys.executable, "-m", "zoblib", "convert", files["uncompressed"], archive, "--compress", "3"],
    capture_output=True,
    text=True,
)
print(done.stdout or done.stderr)
converted = zoblib.load(archive, mmap_mode="r")
print(converted["notes"], type(converted["embedding"]).__name__, converted["embedding"].shape)

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.barh(list(timings), [t * 1e3 for t in timings.values()])
ax.set_xlabel("zoblib.load time (ms)")
ax.set_title("joblib files of one object, by compressor")
fig.tight_layout()

# %%
del mapped, converted
shutil.rmtree(workdir)
