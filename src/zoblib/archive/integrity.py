"""Checksums of stored chunks: Zarr v3's ``crc32c`` codec (4 bytes, little endian, appended).

Every chunk of every node, the skeleton included, ends with the CRC-32C of the bytes before it,
so a flipped byte anywhere is caught when the chunk is read. CRC-32C runs at memory speed with
the CPU's instruction for it (the ``crc32c`` package releases the GIL while it runs).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import crc32c

from zoblib.archive.batching import batches
from zoblib.archive.hashlane import Digesting, RunningCrc32c, feed_blocks, on_lane

CHECKSUM_NBYTES = 4


class ChecksumMismatch(ValueError):
    """Stored bytes do not match their checksum (the reader names the file and the chunk)."""


ZARR_CODEC = {"name": "crc32c"}


def checksum(data: Any, running: int = 0) -> int:
    """The CRC-32C of ``data`` (any buffer), continuing from ``running``."""
    return int(crc32c.crc32c(data, running))


def checksum_bytes(value: int) -> bytes:
    """The 4 bytes the ``crc32c`` codec appends."""
    return value.to_bytes(CHECKSUM_NBYTES, "little")


def with_checksum(pieces: Iterable[memoryview], digests: Sequence[Digesting] = ()) -> Iterator[memoryview]:
    """Yield ``pieces``, then the 4-byte checksum of all of them.

    The checksum runs on the dump's hashing lane (see :mod:`~zoblib.archive.hashlane`) while
    the caller writes the pieces, one batch of a few MiB per hand-off, at most two batches
    ahead; ``digests`` (content digests of byte ranges of the pieces, in order) are fed there
    too, each block of bytes through every hash in turn.
    """
    crc = RunningCrc32c()
    pending = collections.deque(digests)
    in_flight: collections.deque[Future[None]] = collections.deque()
    position = 0
    with on_lane() as submit:
        for batch in batches(pieces):
            in_flight.append(submit(feed_blocks, batch, position, [crc.update], pending))
            position += sum(len(piece) for piece in batch)
            if len(in_flight) > 2:
                in_flight.popleft().result()
            yield from batch
        while in_flight:
            in_flight.popleft().result()
    yield memoryview(checksum_bytes(crc.value))


def split_checksum(stored: Any) -> tuple[memoryview, int]:
    """A stored chunk's payload and the checksum stored after it."""
    view = memoryview(stored).cast("B")
    if len(view) < CHECKSUM_NBYTES:
        raise ValueError(f"{len(view)} bytes cannot hold a {CHECKSUM_NBYTES}-byte checksum")
    return view[:-CHECKSUM_NBYTES], int.from_bytes(view[-CHECKSUM_NBYTES:], "little")


RECORD_CHECKSUM_ATTRIBUTE = "zoblib_crc32c"


def record_checksum(record: Any) -> str:
    """The CRC-32C (8 hex digits) of a root record's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return f"{checksum(canonical.encode()):08x}"
