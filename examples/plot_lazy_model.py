"""
A model file opened lazily
==========================

A model of many weight matrices is dumped uncompressed, then opened with
``zoblib.load(path, mmap_mode="r")``: every big array comes back as a real ``np.memmap`` over
the archive's bytes, so opening the file reads only its small pickle skeleton and root record,
whatever the size of the weights. Here the model is about 200 MB (and a quarter of it, to show
that opening does not grow with size); a multi-GB file behaves the same, because nothing but the
skeleton is read until you index an array.
"""

import functools
import os
import shutil
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import psutil

import zoblib

workdir = tempfile.mkdtemp(prefix="zoblib-example-")
rng = np.random.default_rng(0)


def make_model(layers):
    """A model-like object: a list of layers, each with a weight matrix (8 MB) and a bias."""
    return {
        "name": "mlp",
        "layers": [{"W": rng.standard_normal((1000, 1000)), "b": np.zeros(1000)} for _ in range(layers)],
    }


sizes = {}
for layers in (6, 24):
    path = os.path.join(workdir, f"model-{layers}.pkl")
    zoblib.dump(make_model(layers), path)
    sizes[layers] = os.path.getsize(path)
    print(f"{layers} layers: {sizes[layers] / 1e6:.0f} MB on disk")

# %%
# Opening lazily
# --------------
# With ``mmap_mode="r"`` the weights are memory maps: the process's resident memory barely moves
# when the file is opened, and reading one layer reads only that layer's pages.

process = psutil.Process()
path = os.path.join(workdir, "model-24.pkl")
before = process.memory_info().rss
start = time.perf_counter()
model = zoblib.load(path, mmap_mode="r")
opened = time.perf_counter() - start
after = process.memory_info().rss
first = model["layers"][0]["W"]
print(f"opened in {opened * 1e3:.1f} ms, resident memory grew by {(after - before) / 1e6:.1f} MB")
print(type(first).__name__, first.shape, first.dtype, "backed by", os.path.basename(first.filename))
print("mean of layer 5's weights:", round(float(model["layers"][5]["W"].mean()), 4))

# %%
# What loads lazily
# -----------------
# Arrays of 1 MiB or more are stored as Zarr arrays and mapped. Smaller arrays (the 8 KB biases
# here) are packed together and come back as ordinary arrays read into memory, and everything
# else (the name, the list, the dicts) is in the pickle skeleton, read on open.

bias = model["layers"][0]["b"]
print("weights:", type(first).__name__, "| bias:", type(bias).__name__, "| name:", model["name"])

# %%
# Opening does not grow with size; loading whole does
# ---------------------------------------------------
# The same two files, opened lazily and loaded whole (best of three runs each).


def best_of(function, runs=3):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


rows = []
for layers in sizes:
    path = os.path.join(workdir, f"model-{layers}.pkl")
    lazy = best_of(functools.partial(zoblib.load, path, mmap_mode="r"))
    whole = best_of(functools.partial(zoblib.load, path))
    rows.append((sizes[layers] / 1e6, lazy, whole))
    print(f"{sizes[layers] / 1e6:5.0f} MB: mmap_mode='r' {lazy * 1e3:6.1f} ms, whole {whole * 1e3:7.1f} ms")

fig, ax = plt.subplots(figsize=(6, 3.5))
megabytes = [row[0] for row in rows]
ax.plot(megabytes, [row[2] * 1e3 for row in rows], "o-", label="load whole")
ax.plot(megabytes, [row[1] * 1e3 for row in rows], "o-", label='load(mmap_mode="r")')
ax.set_xlabel("file size (MB)")
ax.set_ylabel("time to open (ms)")
ax.set_title("Opening a model file: lazily vs whole")
ax.legend()
fig.tight_layout()

# %%
# Clean up the example's files.
del model, first, bias
shutil.rmtree(workdir)
