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

from zoblib.archive.nodes import ArrayNode
from zoblib.errors import ChecksumError
from zoblib.hashing.algorithms import HashObject, new_hash_object
from zoblib.hashing.arrays import array_digest


class DigestChecker:
    """Collects ``(array, recorded digest)`` pairs and checks them all before the block ends."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pending: list[tuple[str, str, Future[str]]] = []
        self._pool: ThreadPoolExecutor | None = None

    def submit(
        self, array: np.ndarray[Any, Any], recorded: Any, where: str, computed: str | None = None
    ) -> None:
        """Digest ``array`` in the background, to compare with ``recorded`` (if it is a digest).

        ``computed`` is the digest already taken while the array was read, if it was.
        """
        if not isinstance(recorded, str) or ":" not in recorded or not _digest_is_stable(array.dtype):
            return
        if computed is not None:
            done: Future[str] = Future()
            done.set_result(computed)
            self._pending.append((recorded, where, done))
            return
        hash_name = digest_name(recorded)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoblib-digest")
        future = self._pool.submit(array_digest, array, hash_name=hash_name)
        self._pending.append((recorded, where, future))

    def submit_computed(self, array: np.ndarray[Any, Any], recorded: str, where: str) -> None:
        """Digest ``array`` now, on the calling thread (one that already works in the
        background), to compare with ``recorded`` when the block ends."""
        if _digest_is_stable(array.dtype):
            self.submit(array, recorded, where, array_digest(array, hash_name=digest_name(recorded)))

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


def digest_name(recorded: str) -> str:
    """The algorithm of a recorded digest (``"xxh3_128:…"`` → ``"xxh3_128"``)."""
    return recorded.split(":", 1)[0]


def stored_bytes_are_digested(dtype: np.dtype[Any], order: str, ndim: int) -> bool:
    """Whether the stored value bytes of an array (uncompressed, in storage ``order``) are
    exactly the bytes its content digest covers (C order, no padding), so that one can be
    computed from the other as they stream by."""
    c_order_bytes = order == "C" or ndim <= 1
    return c_order_bytes and dtype.fields is None and dtype.subdtype is None and _digest_is_stable(dtype)


def streaming_hasher(node: ArrayNode, recorded: str) -> HashObject | None:
    """A hash object to feed ``node``'s stored bytes to as they are read, where those bytes are
    exactly what its content digest covers (C order, no padding); else ``None``."""
    if not stored_bytes_are_digested(node.dtype, node.order, len(node.shape)) or ":" not in recorded:
        return None
    try:
        return new_hash_object(digest_name(recorded))
    except ValueError:  # an algorithm this zoblib does not know: digested later, and refused
        return None
