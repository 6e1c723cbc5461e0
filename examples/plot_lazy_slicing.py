"""
Slicing a compressed array without decompressing it all
=======================================================

A compressed array cannot be memory-mapped: its bytes on disk are not its values. zoblib stores
it as a chunked Zarr array instead, and ``load(path, mmap_mode="r")`` returns a
:class:`zoblib.LazyArray` that reads and decompresses only the chunks a slice touches. Here a
stack of 48 microscope-like frames (50 MB of float32; real stacks are often tens of GB, and
behave the same since a slice's cost depends on the chunks it touches, not on the file's size).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

import zoblib

workdir = tempfile.mkdtemp(prefix="zoblib-example-")
rng = np.random.default_rng(0)

# Smooth blobs that drift from frame to frame, plus camera noise: compressible, like real images.
y, x = np.mgrid[0:512, 0:512].astype(np.float32)
frames = []
for t in range(48):
    blobs = sum(
        np.exp(-((x - 256 - 150 * np.cos(t / 8 + k)) ** 2 + (y - 256 - 150 * np.sin(t / 8 + k)) ** 2) / 800)
        for k in range(4)
    )
    frames.append(np.round(1000 * blobs + rng.normal(0, 2, blobs.shape)).astype(np.float32))
stack = np.stack(frames)
path = os.path.join(workdir, "stack.pkl")
zoblib.dump({"stack": stack, "pixel_size_um": 0.65}, path, compress=3)
print(f"{stack.nbytes / 1e6:.0f} MB of pixels in a {os.path.getsize(path) / 1e6:.1f} MB file")

# %%
# How the array is stored
# -----------------------
# ``zoblib inspect`` lists the archive's arrays without unpickling anything: the codec, the
# chunk shape and the stored size of each.

inspected = subprocess.run(
    [sys.executable, "-m", "zoblib", "inspect", path], capture_output=True, text=True, check=True
)
print(inspected.stdout)

# %%
# Lazy slices
# -----------

lazy = zoblib.load(path, mmap_mode="r")["stack"]
print(lazy)


def timed(select, runs=3):
    """Best of ``runs`` first reads, each on a freshly opened lazy array (no chunk is cached)."""
    best = float("inf")
    for _ in range(runs):
        fresh = zoblib.load(path, mmap_mode="r")["stack"]
        start = time.perf_counter()
        result = select(fresh)
        best = min(best, time.perf_counter() - start)
    return result, best


# Chunks hold 4 whole frames: a selection touches every chunk holding one of its frames.
selections = {
    "one pixel (1 chunk)": lambda a: a[10, 100, 100],
    "one frame (1 chunk)": lambda a: a[10],
    "frames 0-7 (2 chunks)": lambda a: a[0:8],
    "32x32 region, all frames (12)": lambda a: a[:, 240:272, 240:272],
    "the whole stack (12 chunks)": lambda a: a[:],
}
times = {}
for label, select in selections.items():
    values, seconds = timed(select)
    times[label] = seconds
    print(f"{label:>30}: {np.shape(values)!s:>16} in {seconds * 1e3:6.1f} ms")

# %%
# The chunk shape decides what is cheap: a frame is one chunk, but a small region of every frame
# touches all twelve chunks and costs as much as the whole stack. Choose ``compress=`` and the
# layout of your arrays with the reads you will make in mind.

assert np.array_equal(lazy[10], stack[10]) and np.array_equal(
    lazy[:, 240:272, 240:272], stack[:, 240:272, 240:272]
)

# %%
# Numpy functions accept a lazy array (they read it whole); indexing first keeps reads small.

print("mean brightness of frame 10:", float(np.mean(lazy[10])))

fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5))
left.imshow(lazy[10], cmap="magma")
left.set_title("lazy[10]: one frame read")
left.set_axis_off()
right.barh(list(times), [t * 1e3 for t in times.values()], color="tab:blue")
right.set_xscale("log")
right.set_xlabel("time (ms, log scale)")
right.set_title("cost of a slice")
fig.tight_layout()

# %%
del lazy
shutil.rmtree(workdir)
