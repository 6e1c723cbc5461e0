"""
Reading an archive with plain zarr and h5py
===========================================

An archive is not a private format: its big arrays are ordinary Zarr v3 arrays (or HDF5
datasets), named after where they sit in the object, so zarr-python and h5py read them without
zoblib, each in its own shape and dtype. Only the Python objects around them need zoblib (or
a pickle reader), and the root record, a JSON attribute, says where everything is
(``format_spec/v2.md``).
"""

import os
import shutil
import tempfile

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc and Zstd filters with h5py)
import matplotlib.pyplot as plt
import numpy as np
import zarr

import zoblib

workdir = tempfile.mkdtemp(prefix="zoblib-example-")
rng = np.random.default_rng(0)
x = np.linspace(0, 4 * np.pi, 400)
model = {
    "name": "two-layer net",
    "layers": [
        {"W": rng.standard_normal((512, 512)), "b": np.zeros(512)},  # W: 2 MB, its own array
        {"W": rng.standard_normal((512, 10)), "b": np.zeros(10)},  # small: packed
    ],
    "field": np.sin(x)[:, None] * np.cos(x)[None, :],  # 400 x 400, 1.3 MB
}

# %%
# A Zarr directory, read with zarr-python
# ---------------------------------------

zarr_path = os.path.join(workdir, "model.zarr")
zoblib.dump(model, zarr_path, compress=3)
group = zarr.open_group(zarr_path, mode="r")
record = group.attrs["zoblib"]
print("format version", record["format_version"])
for ref in record["refs"]:  # where each array of the object is stored
    where = f"{ref['node']}, items {ref['offset']}.. (packed)" if "offset" in ref else ref["node"]
    print(f"  {ref.get('name', ref['node'].removeprefix('arrays/')):<12} -> {where}")
field = group["arrays/field"]
print(field)
print("its codecs:", [type(codec).__name__ for codec in field.compressors])

# %%
# The same object as HDF5, read with h5py
# ---------------------------------------

h5_path = os.path.join(workdir, "model.h5")
zoblib.dump(model, h5_path, compress=3)
with h5py.File(h5_path, "r") as file:
    file.visititems(lambda name, item: print(f"{name:<24} {item}"))
    from_h5 = file["arrays/field"][...]
assert np.array_equal(from_h5, model["field"])

# %%
# The small arrays (the biases and the last layer here) are stored in the pickle skeleton with
# the Python objects, or, at mid sizes, packed end to end in ``packs/`` arrays (section 6 of the
# format specification). zoblib puts everything back together:

restored = zoblib.load(zarr_path)
print(restored["name"], [layer["W"].shape for layer in restored["layers"]])

fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.3))
left.imshow(field[:], cmap="RdBu")
left.set_title("zarr: arrays/field")
right.imshow(from_h5, cmap="RdBu")
right.set_title("h5py: arrays/field")
for ax in (left, right):
    ax.set_axis_off()
fig.tight_layout()

# %%
shutil.rmtree(workdir)
