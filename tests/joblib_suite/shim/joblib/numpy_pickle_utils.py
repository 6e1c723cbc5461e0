"""``joblib.numpy_pickle_utils`` (joblib's file format helpers): only what zoblib's reader of
joblib's files has too (joblib's tests compare old files' contents with it)."""

from joblib._missing import JOBLIB_FORMAT, MissingName
from zoblib.joblib_format import native_byte_order as _ensure_native_byte_order  # noqa: F401

_IO_BUFFER_SIZE = MissingName("joblib.numpy_pickle_utils._IO_BUFFER_SIZE", JOBLIB_FORMAT)
_detect_compressor = MissingName("joblib.numpy_pickle_utils._detect_compressor", JOBLIB_FORMAT)
_is_numpy_array_byte_order_mismatch = MissingName(
    "joblib.numpy_pickle_utils._is_numpy_array_byte_order_mismatch", JOBLIB_FORMAT
)
