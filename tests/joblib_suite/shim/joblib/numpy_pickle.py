"""``joblib.numpy_pickle``: ``dump`` and ``load`` are zoblib's; the pickler internals are missing."""

from joblib._missing import JOBLIB_FORMAT, MissingName
from zoblib import dump, load

__all__ = ["dump", "load"]

NumpyUnpickler = MissingName("joblib.numpy_pickle.NumpyUnpickler", JOBLIB_FORMAT)
NUMPY_ARRAY_ALIGNMENT_BYTES = MissingName("joblib.numpy_pickle.NUMPY_ARRAY_ALIGNMENT_BYTES", JOBLIB_FORMAT)
