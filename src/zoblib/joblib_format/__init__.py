"""Reading joblib's own files: what ``joblib.dump`` wrote, in every joblib version since 0.8.

``zoblib.load`` recognises them by content (:func:`identify`) and reads them here, without
joblib installed. One module per job:

- ``sniffing``: a joblib file or a zoblib archive, and the compression around it;
- ``reader``: open, decompress, unpickle, and turn every failure into zoblib's errors;
- ``unpickler``: the pickle with joblib's array wrappers replaced by arrays, made to be combined
  with a loading policy by inheritance;
- ``wrappers``: stand-ins for joblib's wrapper classes (data, not code);
- ``arrays``: joblib >= 0.10's arrays, raw bytes in the stream (read, or ``np.memmap``-ed);
- ``legacy``: joblib < 0.10's side files (``.npy``, ZF zlib files).
"""

from __future__ import annotations

from zoblib.joblib_format.arrays import JoblibReading, native_byte_order
from zoblib.joblib_format.reader import UnpicklerFactory, load_joblib_file
from zoblib.joblib_format.sniffing import Identified, identify, looks_like_pickle
from zoblib.joblib_format.unpickler import JoblibUnpickler

__all__ = [
    "Identified",
    "JoblibReading",
    "JoblibUnpickler",
    "UnpicklerFactory",
    "identify",
    "load_joblib_file",
    "looks_like_pickle",
    "native_byte_order",
]
