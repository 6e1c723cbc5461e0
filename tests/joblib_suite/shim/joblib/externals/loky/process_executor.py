"""``joblib.externals.loky.process_executor``: the standalone ``loky``'s (zoblib's backend uses it)."""

from loky.process_executor import TerminatedWorkerError

__all__ = ["TerminatedWorkerError"]
