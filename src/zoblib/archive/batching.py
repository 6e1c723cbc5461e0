"""Grouping a stream of byte pieces into batches of a few MiB.

Work handed to another thread (a checksum, a ``writev``) costs a hand-off per call: batching
many small pieces (packed arrays of 256 KiB) makes it cost no more than one big piece.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

#: Bytes a batch gathers before it is handed on.
BATCH_NBYTES = 8 << 20


def batches(pieces: Iterable[memoryview], nbytes: int = BATCH_NBYTES) -> Iterator[list[memoryview]]:
    """Consecutive ``pieces`` grouped into lists of about ``nbytes`` bytes (the last may be smaller)."""
    batch: list[memoryview] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= nbytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
