"""
A Parallel loop over a big array, with a progress bar
=====================================================

``Parallel`` and ``delayed`` are joblib's. A big numpy argument is not pickled to every worker:
it is written once to a temporary file and each worker gets a read-only ``np.memmap`` of it, so
two processes share one copy of the pages. ``progress_bar=True`` reports progress as tasks
finish. Here 80 windows of an array of 20 million float64 values (160 MB; the same code runs on
arrays of many GB, since the workers map the pages they read instead of receiving copies).
"""

import contextlib
import io
import itertools
import os
import re
import shutil
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np

import zoblib

rng = np.random.default_rng(0)
n = 20_000_000
t = np.arange(n) / 1e4
signal = np.sin(t) + 0.3 * np.sin(7.3 * t) + rng.normal(0, 0.5, n)
print(f"signal: {signal.nbytes / 1e6:.0f} MB")

windows = np.linspace(0, n, 81, dtype=np.int64)


def window_stats(array, start, stop):
    """Statistics of one window; ``array`` arrives in the worker as a read-only memory map."""
    part = array[start:stop]
    spectrum = np.abs(np.fft.rfft(part))  # a few milliseconds of work per window
    return type(array).__name__, float(part.mean()), float(part.std()), int(spectrum[1:].argmax() + 1)


# %%
# The loop
# --------
# In a terminal the bar redraws itself on standard error (in Jupyter, as a widget). A page cannot
# redraw, so here standard error is captured and the bar's last state printed.

bar = io.StringIO()
start = time.perf_counter()
with contextlib.redirect_stderr(bar):
    results = zoblib.Parallel(n_jobs=2, progress_bar=True)(
        zoblib.delayed(window_stats)(signal, a, b) for a, b in itertools.pairwise(windows)
    )
elapsed = time.perf_counter() - start
print([line for line in re.split(r"[\r\n]", bar.getvalue()) if line.strip()][-1])
kinds = {kind for kind, *_ in results}
print(f"{len(results)} windows in {elapsed:.2f} s; the workers saw the array as: {kinds}")

# %%
# The first call also paid for starting the workers and for writing the 160 MB array to the
# call's temporary file. An array that already *is* a memory map of a file (an uncompressed
# archive loaded with ``mmap_mode="r"``) travels by its path and offset, with no copy at all:

path = os.path.join(tempfile.mkdtemp(prefix="zoblib-example-"), "signal.pkl")
zoblib.dump(signal, path)
mapped = zoblib.load(path, mmap_mode="r")
tasks = list(itertools.pairwise(windows))
start = time.perf_counter()
zoblib.Parallel(n_jobs=2)(zoblib.delayed(window_stats)(mapped, a, b) for a, b in tasks)
print(f"two workers started, array from an archive: {time.perf_counter() - start:.2f} s")
start = time.perf_counter()
serial = [window_stats(signal, a, b) for a, b in tasks]
print(f"in this process alone: {time.perf_counter() - start:.2f} s")

# %%
# Whether two workers beat one process depends on the work per task and on the cores free:
# this site is built on a small machine shared with other jobs, so read these times as an
# example of the output, not as a benchmark (``benchmarks/bench_parallel.py`` measures).

assert [r[1:] for r in serial] == [r[1:] for r in results]

# %%
# The results
# -----------

means = [mean for _, mean, _, _ in results]
stds = [std for _, _, std, _ in results]
centres = (windows[:-1] + windows[1:]) / 2 / 1e4
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(centres, means, label="mean of the window")
ax.fill_between(centres, np.subtract(means, stds), np.add(means, stds), alpha=0.3, label="± std")
ax.set_xlabel("t")
ax.set_title("80 windows of a 160 MB signal, two worker processes")
ax.legend()
fig.tight_layout()

# %%
del mapped
shutil.rmtree(os.path.dirname(path))
