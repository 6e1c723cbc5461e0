"""
Comparing compression codecs: file size against time
====================================================

``compress=`` takes joblib's values, and each picks a numcodecs codec applied chunk by chunk on
every core. Which one to use depends on the data and on whether you write once and read often.
Here three kinds of data, 8 MB each (a real dataset is larger, but sizes and speeds are per
byte, so the ratios carry over):

- **sensor**: a temperature-like signal kept at 2 decimals, as values read back from CSV are;
- **image**: a smooth 16-bit image stack with camera noise;
- **random**: uniformly random float64, which nothing compresses (a worst case).

Each is dumped with several ``compress=`` values and loaded back; joblib's ``compress=3`` (zlib
over the whole pickle) is the reference.
"""

import functools
import os
import shutil
import tempfile
import time

import joblib
import matplotlib.pyplot as plt
import numpy as np

import zoblib

workdir = tempfile.mkdtemp(prefix="zoblib-example-")
rng = np.random.default_rng(0)
items = 1_000_000  # 8 MB of float64

t = np.arange(items) / 3600.0
sensor = np.round(20 + 5 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.01, items)), 2)
yy, xx = np.mgrid[0:256, 0:256]
base = 3000 + 2000 * np.exp(-((xx - 128.0) ** 2 + (yy - 128.0) ** 2) / 3000)
image = np.stack([base + rng.normal(0, 20, base.shape) for _ in range(items * 8 // 2 // base.size)])
image = image.astype(np.uint16)
datasets = {"sensor": sensor, "image": image, "random": rng.random(items)}

settings = {
    "none": 0,
    "compress=3 (Blosc lz4)": 3,
    "compress=6 (Blosc zstd)": 6,
    '("zstd", 3)': ("zstd", 3),
    '("zlib", 3)': ("zlib", 3),
}


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


rows = []
for data_name, data in datasets.items():
    for label, compress in settings.items():
        path = os.path.join(workdir, f"{data_name}.pkl")
        _, dump_seconds = timed(functools.partial(zoblib.dump, data, path, compress=compress))
        loaded, load_seconds = timed(functools.partial(zoblib.load, path))
        assert np.array_equal(loaded, data)
        rows.append(
            (data_name, "zoblib " + label, os.path.getsize(path) / data.nbytes, dump_seconds, load_seconds)
        )
        os.remove(path)
    path = os.path.join(workdir, f"{data_name}.joblib")
    _, dump_seconds = timed(functools.partial(joblib.dump, data, path, compress=3))
    _, load_seconds = timed(functools.partial(joblib.load, path))
    rows.append(
        (data_name, "joblib compress=3", os.path.getsize(path) / data.nbytes, dump_seconds, load_seconds)
    )
    os.remove(path)

print(f"{'data':<7} {'codec':<30} {'size':>6} {'dump':>8} {'load':>8}")
for data_name, label, ratio, dump_seconds, load_seconds in rows:
    print(f"{data_name:<7} {label:<30} {ratio:6.1%} {dump_seconds * 1e3:6.0f}ms {load_seconds * 1e3:6.0f}ms")

# %%
# Size against time
# -----------------
# Lower left is better. Blosc lz4 (``compress=3``) writes at close to the disk's speed; Blosc zstd
# (``compress=6``) makes smaller files for more time; zlib, joblib's codec, is slow here and in
# joblib, where it runs on one core over the whole stream. ``"lzma"`` and ``"bz2"`` make files a
# few percent smaller still at a tenth of zlib's speed or less; they are left out to keep this
# page quick to build.

fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), sharey=False)
labels = ["zoblib " + label for label in settings] + ["joblib compress=3"]
markers = dict(zip(labels, "osD^vP", strict=True))
for ax, data_name in zip(axes, datasets, strict=True):
    for _, label, ratio, dump_seconds, _ in (row for row in rows if row[0] == data_name):
        ax.scatter(dump_seconds * 1e3, ratio * 100, marker=markers[label], s=50, label=label)
    ax.set_xscale("log")
    ax.set_title(f"{data_name} (8 MB)")
    ax.set_xlabel("dump time (ms, log scale)")
    ax.set_ylabel("file size (% of the data)")
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=7, loc="best")
fig.tight_layout()

# %%
shutil.rmtree(workdir)
