"""Safe loading: an allowlist of globals, a guarded unpickler, and a static audit of skeletons.

* :mod:`~zoblib.safety.allowlist`: the policy as data, each entry with why it is safe;
* :mod:`~zoblib.safety.policy`: deciding and resolving names (importing nothing else);
* :mod:`~zoblib.safety.scan`: the globals a pickle names and calls, without executing it;
* :mod:`~zoblib.safety.unpickler`: the unpickler that enforces the policy as it runs;
* :mod:`~zoblib.safety.joblib_files`: that unpickler composed with the reader of joblib's files;
* :mod:`~zoblib.safety.audit`: ``zoblib.audit`` and its report;
* :mod:`~zoblib.safety.switch`: the process-wide default (``ZOBLIB_SAFE_LOAD``).
"""

from zoblib.safety.audit import AuditReport, allow_call, audit, report_of
from zoblib.safety.policy import Policy, Trusted
from zoblib.safety.scan import ScanResult, scan_globals
from zoblib.safety.switch import SAFE_LOAD_VARIABLE, safe_load_default, set_safe_load
from zoblib.safety.unpickler import GuardedUnpickler, UnsafeOperation

__all__ = [
    "SAFE_LOAD_VARIABLE",
    "AuditReport",
    "GuardedUnpickler",
    "Policy",
    "ScanResult",
    "Trusted",
    "UnsafeOperation",
    "allow_call",
    "audit",
    "report_of",
    "safe_load_default",
    "scan_globals",
    "set_safe_load",
]
