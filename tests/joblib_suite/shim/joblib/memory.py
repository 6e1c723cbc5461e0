"""``joblib.memory``: joblib's public classes bound to zoblib's; private helpers missing."""

from joblib._missing import JOBLIB_PRIVATE, MissingName
from zoblib.memory import (
    STORE_BACKENDS,
    AsyncMemorizedFunc,
    AsyncNotMemorizedFunc,
    JobLibCollisionWarning,
    MemorizedFunc,
    MemorizedResult,
    Memory,
    NotMemorizedFunc,
    NotMemorizedResult,
    expires_after,
    register_store_backend,
)

__all__ = [
    "AsyncMemorizedFunc",
    "AsyncNotMemorizedFunc",
    "JobLibCollisionWarning",
    "MemorizedFunc",
    "MemorizedResult",
    "Memory",
    "NotMemorizedFunc",
    "NotMemorizedResult",
    "expires_after",
    "register_store_backend",
]

#: joblib's private registry of store backends: zoblib's read-only registry plays its role.
_STORE_BACKENDS = STORE_BACKENDS

_FUNCTION_HASHES = MissingName("joblib.memory._FUNCTION_HASHES", JOBLIB_PRIVATE)
_build_func_identifier = MissingName("joblib.memory._build_func_identifier", JOBLIB_PRIVATE)
_store_backend_factory = MissingName("joblib.memory._store_backend_factory", JOBLIB_PRIVATE)
