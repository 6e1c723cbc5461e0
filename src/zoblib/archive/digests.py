"""Checking the content digests an archive records, for every array read whole.

Chunk checksums prove each stored chunk is the one written at its place; the digest of a whole
array (XXH3-128 of its values in C order, recorded by ``dump``) proves the array put together
from them, a packed member cut out at its offset included, holds the values that were dumped.
Digests run on a second thread while the reader goes on (XXH3 releases the GIL).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import numpy as np

from zoblib.errors import ChecksumError
from zoblib.hashing.arrays import array_digest


class DigestChecker:
    """Collects ``(array, recorded digest)`` pairs and checks them all before the block ends."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pending: list[tuple[str, str, Future[str]]] = []
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, array: np.ndarray[Any, Any], recorded: Any, where: str) -> None:
        """Digest ``array`` in the background, to compare with ``recorded`` (if it is a digest)."""
        if not isinstance(recorded, str) or ":" not in recorded or not _digest_is_stable(array.dtype):
            return
        hash_name = recorded.split(":", 1)[0]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoblib-digest")
        future = self._pool.submit(array_digest, array, hash_name=hash_name)
        self._pending.append((recorded, where, future))

    def __enter__(self) -> DigestChecker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                for recorded, where, future in self._pending:
                    if future.result() != recorded:
                        raise ChecksumError(
                            self.path,
                            f"an array read from {where!r} does not match the content digest recorded "
                            "when it was dumped",
                        )
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)


def _digest_is_stable(dtype: np.dtype[Any]) -> bool:
    # Long doubles (80-bit values in 16 bytes) carry padding bytes that numpy's copies do not
    # keep, so a digest over their bytes may differ for equal values; objects have no bytes.
    if dtype.hasobject:
        return False
    if dtype.fields is not None:
        return all(_digest_is_stable(dtype.fields[name][0]) for name in dtype.names or ())
    if dtype.subdtype is not None:
        return _digest_is_stable(dtype.subdtype[0])
    return dtype.char not in "gG"
