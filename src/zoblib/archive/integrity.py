"""Checksums of stored chunks: Zarr v3's ``crc32c`` codec (4 bytes, little endian, appended).

Every chunk of every node, the skeleton included, ends with the CRC-32C of the bytes before it,
so a flipped byte anywhere is caught when the chunk is read. CRC-32C runs at memory speed with
the CPU's instruction for it (the ``crc32c`` package releases the GIL while it runs).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import crc32c

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


def with_checksum(pieces: Iterable[memoryview]) -> Iterator[memoryview]:
    """Yield ``pieces``, then the 4-byte checksum of all of them.

    The checksum runs in a second thread (CRC-32C releases the GIL) while the caller writes
    each piece, with at most two pieces in flight.
    """
    running: Future[int] | None = None
    in_flight: collections.deque[Future[int]] = collections.deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoblib-crc32c") as pool:
        for piece in pieces:
            running = pool.submit(_continue, running, piece)
            in_flight.append(running)
            if len(in_flight) > 2:
                in_flight.popleft().result()
            yield piece
        total = 0 if running is None else running.result()
    yield memoryview(checksum_bytes(total))


def _continue(previous: Future[int] | None, piece: memoryview) -> int:
    # Runs in the single checksum thread, in order, so ``previous`` is already done.
    return checksum(piece, 0 if previous is None else previous.result())


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
