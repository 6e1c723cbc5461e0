"""Keeps zoblib's own pytest run out of the shim: its package is named ``joblib``.

Importing ``shim/joblib`` here (for doctests) would shadow the real joblib that zoblib's other
tests use; the shim is imported only by the subprocess that runs joblib's tests.
"""

collect_ignore = ["shim", "suite_conftest.py"]
