"""The hashing lane of a dump: one thread that runs every hash of the bytes being written.

A dump hashes each byte it writes up to three times: the chunk's CRC-32C, the ZIP member's
CRC-32 and the array's content digest (XXH3-128). Reading the bytes from memory is what those
hashes cost. Run each over a whole array on a thread of its own, they read a 1 GiB array from
memory three times (443 ms here); run one after another on each block of
:data:`BLOCK_NBYTES`, while the block sits in the CPU's cache, they read it once (205 ms). So a
dump opens one lane (:func:`hash_lane`), and the writers of checksums and digests
(:func:`~zoblib.archive.integrity.with_checksum`) and of ZIP members submit their work on each
batch to it, in the order the batches are written.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import crc32c

from zoblib.hashing.algorithms import HashObject

#: Bytes each hash reads in turn: well inside a core's L2 cache.
BLOCK_NBYTES = 1 << 20

_LANE: contextvars.ContextVar[ThreadPoolExecutor | None] = contextvars.ContextVar(
    "zoblib_hash_lane", default=None
)


@contextlib.contextmanager
def hash_lane() -> Iterator[None]:
    """Run the hashing submitted through :func:`on_lane` from this thread on one shared thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoblib-hash") as lane:
        token = _LANE.set(lane)
        try:
            yield
        finally:
            _LANE.reset(token)


@contextlib.contextmanager
def on_lane() -> Iterator[Callable[..., Future[Any]]]:
    """A ``submit`` running jobs in order: on the current lane, or on a thread of its own."""
    lane = _LANE.get()
    if lane is not None:
        yield lane.submit
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoblib-hash") as own:
        yield own.submit


def lane_or(own: ThreadPoolExecutor) -> Callable[..., Future[Any]]:
    """The current lane's ``submit``, or ``own``'s where no lane is open."""
    lane = _LANE.get()
    return (own if lane is None else lane).submit


@dataclass
class Digesting:
    """A content digest fed the bytes ``start:stop`` of a stream (one array's, in C order)."""

    start: int
    stop: int
    hasher: HashObject


class RunningCrc32c:
    """A CRC-32C updated piece by piece."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: memoryview) -> None:
        self.value = int(crc32c.crc32c(data, self.value))


def feed_blocks(
    pieces: list[memoryview],
    position: int,
    updates: list[Callable[[memoryview], object]],
    digests: collections.deque[Digesting],
) -> None:
    """Feed ``pieces`` (the stream's bytes from ``position`` on) to every one of ``updates``,
    and each byte to the ``digests`` (in stream order) that cover it, block after block.

    Digests the stream has passed are dropped from the front of ``digests``.
    """
    for piece in pieces:
        for offset in range(0, len(piece), BLOCK_NBYTES):
            block = piece[offset : offset + BLOCK_NBYTES]
            for update in updates:
                update(block)
            start = position + offset
            stop = start + len(block)
            for digesting in digests:
                if digesting.start >= stop:
                    break
                low = max(digesting.start, start) - start
                high = min(digesting.stop, stop) - start
                digesting.hasher.update(block[low:high])
            while digests and digests[0].stop <= stop:
                digests.popleft()
        position += len(piece)
