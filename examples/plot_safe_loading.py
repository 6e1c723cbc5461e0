"""
Safe loading of an untrusted file
=================================

A pickle can name any function to call when it is loaded, and a joblib file or a zoblib archive
holds a pickle: loading a file from the internet with ``joblib.load`` or ``zoblib.load`` runs
whatever its author wanted. ``zoblib.load(path, safe=True)`` runs nothing outside an allowlist,
and ``zoblib.audit(path)`` says what a file would run, without running it. Because an archive
keeps its arrays outside the pickle, a model's skeleton names few things, and scikit-learn
models load safely with no configuration.
"""

import os
import shutil
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

import zoblib

workdir = tempfile.mkdtemp(prefix="zoblib-example-")

# %%
# A hostile file
# --------------
# This object's ``__reduce__`` tells the unpickler to call ``os.system`` with a command: loading
# the file would run it. (The command here only writes a file, so that we can see whether it ran.)

marker = os.path.join(workdir, "i-ran")


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {marker}",))


hostile = os.path.join(workdir, "model-from-the-internet.pkl")
zoblib.dump({"weights": np.ones(10), "surprise": Exploit()}, hostile)

report = zoblib.audit(hostile)
print("globals the pickle names:", report.globals)
print("outside the allowlist:   ", report.untrusted)
print("safe to load:", report.safe)

# %%
# ``safe=True`` refuses it, naming the file and what it would have called; nothing ran:

try:
    zoblib.load(hostile, safe=True)
except zoblib.UntrustedContentError as error:
    print(f"{type(error).__name__}: {error}")
print("the command ran:", os.path.exists(marker))

# %%
# A real model loads safely
# -------------------------
# A random forest fitted on the iris data set (shipped with scikit-learn) needs only names of
# the allowlist: numpy's rebuild functions and dtypes, and scikit-learn's classes.

iris = load_iris()
X, y = iris.data, iris.target
forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
path = os.path.join(workdir, "forest.pkl")
zoblib.dump(forest, path)
report = zoblib.audit(path)
print(f"{len(report.globals)} globals, all allowed: {report.safe}")
for name in report.globals:
    print("  ", name)
loaded = zoblib.load(path, safe=True)
assert (loaded.predict(X) == forest.predict(X)).all()
print("accuracy of the safely loaded model:", loaded.score(X, y))

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.barh(iris.feature_names, loaded.feature_importances_)
ax.set_xlabel("feature importance")
ax.set_title("The safely loaded forest's feature importances")
fig.tight_layout()

# %%
shutil.rmtree(workdir)
