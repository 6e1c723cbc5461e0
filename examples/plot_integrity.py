"""
Finding a damaged file before it gives wrong answers
====================================================

A bit flipped by a failing disk or a truncated download does not always make a pickle fail to
load: joblib would return slightly wrong numbers without a word. Every chunk of a zoblib archive
carries a CRC-32C and every array a content digest, so ``load``, lazy reads and
``zoblib.verify`` find the damage and name the file and the array. Here a 32 MB archive, with
one byte changed in the middle of its data.
"""

import os
import shutil
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import zoblib

workdir = tempfile.mkdtemp(prefix="zoblib-example-")
path = os.path.join(workdir, "measurements.pkl")
values = np.cumsum(np.random.default_rng(0).normal(size=4_000_000))  # 32 MB
zoblib.dump({"values": values}, path)
zoblib.verify(path)
print("verified:", path)

# %%
# Damage one byte
# ---------------
# Flip the low bits of one byte half-way through the file: inside the array's data.

with open(path, "r+b") as file:
    file.seek(os.path.getsize(path) // 2)
    byte = file.read(1)
    file.seek(-1, os.SEEK_CUR)
    file.write(bytes([byte[0] ^ 0x01]))

for action, run in {
    "zoblib.verify(path)": lambda: zoblib.verify(path),
    "zoblib.load(path)": lambda: zoblib.load(path),
}.items():
    try:
        run()
        print(f"{action}: no error")
    except zoblib.ChecksumError as error:
        print(f"{action} raised {type(error).__name__}:\n    {error}")

# %%
# A lazy read checks the chunks it reads, so the parts of the array that are intact stay
# readable, and the damaged chunk is refused. (A ``np.memmap`` cannot check pages as they are
# read: ``load(path, mmap_mode="r", verify=True)`` checks them once when opening.)

lazy_path = os.path.join(workdir, "compressed.pkl")
zoblib.dump({"values": values}, lazy_path, compress=3)
with open(lazy_path, "r+b") as file:
    file.seek(os.path.getsize(lazy_path) // 2)
    byte = file.read(1)
    file.seek(-1, os.SEEK_CUR)
    file.write(bytes([byte[0] ^ 0x01]))
lazy = zoblib.load(lazy_path, mmap_mode="r")["values"]
good = []
for start in range(0, len(lazy), 250_000):
    try:
        lazy[start : start + 250_000]
        good.append(True)
    except zoblib.ChecksumError:
        good.append(False)
damaged = [i for i, ok in enumerate(good) if not ok]
print(f"{sum(good)} of {len(good)} slices of 250,000 values read; refused: {damaged}")
print(lazy)  # its chunks are larger than a slice: every slice touching the damaged one is refused

fig, ax = plt.subplots(figsize=(7, 2.6))
ax.plot(values, lw=0.5)
for n, i in enumerate(damaged):
    label = "refused: checksum" if n == 0 else None
    ax.axvspan(i * 250_000, (i + 1) * 250_000, color="tab:red", alpha=0.4, label=label)
ax.set_title("A lazily read array with one damaged chunk")
ax.legend(loc="upper left")
fig.tight_layout()

# %%
del lazy
shutil.rmtree(workdir)
