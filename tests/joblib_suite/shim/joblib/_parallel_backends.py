"""``joblib._parallel_backends`` (private in joblib): its backend classes bound to zoblib's."""

from zoblib.parallel import ParallelBackendBase
from zoblib.parallel.backends.loky import LokyBackend
from zoblib.parallel.backends.multiprocessing import MultiprocessingBackend
from zoblib.parallel.backends.sequential import SequentialBackend
from zoblib.parallel.backends.threading import ThreadingBackend

__all__ = [
    "LokyBackend",
    "MultiprocessingBackend",
    "ParallelBackendBase",
    "SequentialBackend",
    "ThreadingBackend",
]
