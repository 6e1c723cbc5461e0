"""Safe loading of joblib's own files: joblib's unpickler and the guarded one, composed.

A joblib file's pickle stream carries its arrays' bytes inline, after each array wrapper, so
it cannot be scanned ahead as an archive's skeleton is: here the policy is enforced as the
pickle runs (every global through the allowlist, every call and ``BUILD`` checked), and a
refusal can come after some allowed constructors have run. Nothing outside the allowlist runs.
"""

from __future__ import annotations

from typing import IO, Any

from zoblib.errors import UntrustedContentError
from zoblib.joblib_format.arrays import JoblibReading
from zoblib.joblib_format.reader import UnpicklerFactory
from zoblib.joblib_format.unpickler import JoblibUnpickler
from zoblib.joblib_format.wrappers import STAND_INS
from zoblib.safety.audit import allow_call
from zoblib.safety.policy import Policy, Resolved
from zoblib.safety.unpickler import GuardedUnpickler, UnsafeOperation


class SafeJoblibUnpickler(JoblibUnpickler, GuardedUnpickler):
    """Reads a joblib file under a :class:`~zoblib.safety.Policy`.

    joblib's array wrappers (``joblib.numpy_pickle.NumpyArrayWrapper``, ...) resolve to
    zoblib's stand-ins, plain data classes, without importing joblib; object arrays' nested
    pickles are read by an unpickler of this same class, under the same policy.
    """

    def __init__(self, file: IO[bytes], reading: JoblibReading, *, policy: Policy, **options: Any) -> None:
        super().__init__(file, reading, policy=policy, **options)

    def find_class(self, module: str, name: str) -> Any:
        stand_in = STAND_INS.get((module, name))
        if stand_in is not None:
            self.mark_resolved(Resolved(stand_in, callable=True, name=f"{module}.{name}"))
        return super().find_class(module, name)

    def load(self) -> Any:
        try:
            return super().load()
        except UnsafeOperation as exc:
            call = allow_call(self.reading.name, ("<refused operation>",))
            raise UntrustedContentError(
                self.reading.name,
                f"refused to load with safe=True: {exc}. If you trust this file, load it with {call}",
                (f"<{exc}>",),
                call,
            ) from None


def safe_joblib_unpickler(policy: Policy) -> UnpicklerFactory:
    """The ``unpickler=`` factory of ``load_joblib_file`` for a safe load under ``policy``."""

    def make(stream: IO[bytes], reading: JoblibReading) -> SafeJoblibUnpickler:
        return SafeJoblibUnpickler(stream, reading, policy=policy)

    return make
