"""
A cached pipeline step, and why it missed
=========================================

``Memory`` caches a function's results on disk, keyed by its arguments and its code, as joblib's
does. When a call computes instead of loading, zoblib tells you why: new arguments, a changed
function, an expired entry. Here a feature-extraction step of a small pipeline on 100,000
sensor samples (a real pipeline's step would take minutes; this one is made slow on purpose
with a short sleep, so that hits and misses show in the timings).
"""

import shutil
import tempfile
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np

import zoblib

cachedir = tempfile.mkdtemp(prefix="zoblib-example-cache-")
memory = zoblib.Memory(cachedir, verbose=0)
rng = np.random.default_rng(0)
signal = np.cumsum(rng.normal(0, 1, 100_000))  # a drifting sensor reading


@memory.cache
def features(x, window=50):
    time.sleep(0.3)  # stands for an expensive computation
    kernel = np.ones(window) / window
    smooth = np.convolve(x, kernel, mode="valid")
    return np.stack([smooth, np.gradient(smooth)])


timeline = []


def run(label, *args, **kwargs):
    """Call the cached step, print whether it hit and, if not, why; remember the time taken."""
    start = time.perf_counter()
    features(*args, **kwargs)
    seconds = time.perf_counter() - start
    status = features.last_status
    outcome = "hit" if status.hit else f"miss: {status.reason}"
    print(f"{label:<32} {seconds * 1e3:7.1f} ms  {outcome}")
    timeline.append((label, seconds, status.hit))


run("first call", signal)
run("same call again", signal)
run("window=100", signal, window=100)
run("signal changed by one sample", np.where(np.arange(signal.size) == 7, 0.0, signal))
run("window=100 again", signal, window=100)

# %%
# Asking before computing
# -----------------------
# ``cache_status`` answers without computing anything:

for window in (25, 100):
    status = features.cache_status(signal, window=window)
    print(f"window={window}: hit={status.hit}, reason={status.reason!r}")

# %%
# The code changed
# ----------------
# Editing the function's body (here: a different kernel) makes its stored results stale. zoblib
# notices from the source text, clears them, and the next call says so. (Run again after an
# edit, joblib's ``FunctionChangedWarning`` says the old results were cleared; defining the
# edited function a second time in one script, as here, gives joblib's other warning instead:
# two functions of one name share the cache.)


@memory.cache
def features(x, window=50):  # the same step, edited
    time.sleep(0.3)
    kernel = np.hanning(window) / np.hanning(window).sum()
    smooth = np.convolve(x, kernel, mode="valid")
    return np.stack([smooth, np.gradient(smooth)])


with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    run("after editing the function", signal)
for warning in caught:
    print(f"{type(warning.message).__name__}: {str(warning.message)[:90]}...")
run("and then again", signal)

# %%
# Entries that expire
# -------------------
# A ``cache_validation_callback`` decides whether a stored entry is still good;
# :func:`zoblib.expires_after` refuses entries older than a duration.

fresh_memory = zoblib.Memory(cachedir, verbose=0)


@fresh_memory.cache(cache_validation_callback=zoblib.expires_after(seconds=0.5))
def daily_report(x):
    return float(np.mean(x))


daily_report(signal)
print("right away: hit =", daily_report.cache_status(signal).hit)
time.sleep(0.6)
late = daily_report.cache_status(signal)
print("0.6 s later:", repr(late.reason), "-", late.detail)

# %%
# What the cache holds
# --------------------

for entry in memory.list_entries(features):
    print(entry.args_id[:8], f"{entry.size / 1e6:.1f} MB", f"computed in {entry.duration:.2f} s")

fig, ax = plt.subplots(figsize=(7, 3.5))
labels = [label for label, _, _ in timeline]
colors = ["tab:green" if hit else "tab:red" for _, _, hit in timeline]
ax.barh(labels[::-1], [s * 1e3 for _, s, _ in timeline][::-1], color=colors[::-1])
ax.set_xlabel("time of the call (ms)")
ax.set_title("Cached step: hits (green) and misses (red)")
fig.tight_layout()

# %%
shutil.rmtree(cachedir)
