"""``joblib._store_backends`` (private in joblib): its classes bound to zoblib's store classes."""

from joblib._missing import JOBLIB_PRIVATE, MissingName
from zoblib import CacheWarning
from zoblib.memory import LocalStoreBackend as FileSystemStoreBackend
from zoblib.memory import StoreBackend as StoreBackendBase

__all__ = ["CacheWarning", "FileSystemStoreBackend", "StoreBackendBase"]

concurrency_safe_write = MissingName("joblib._store_backends.concurrency_safe_write", JOBLIB_PRIVATE)
