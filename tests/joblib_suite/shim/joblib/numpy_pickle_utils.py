"""``joblib.numpy_pickle_utils`` (joblib's file format helpers): nothing of it is in zoblib."""

from joblib._missing import JOBLIB_FORMAT, MissingName

_IO_BUFFER_SIZE = MissingName("joblib.numpy_pickle_utils._IO_BUFFER_SIZE", JOBLIB_FORMAT)
_detect_compressor = MissingName("joblib.numpy_pickle_utils._detect_compressor", JOBLIB_FORMAT)
_ensure_native_byte_order = MissingName("joblib.numpy_pickle_utils._ensure_native_byte_order", JOBLIB_FORMAT)
_is_numpy_array_byte_order_mismatch = MissingName(
    "joblib.numpy_pickle_utils._is_numpy_array_byte_order_mismatch", JOBLIB_FORMAT
)
