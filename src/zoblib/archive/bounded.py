"""Decoding a chunk's payload with a bound: never more than the chunk's own size.

PLACEHOLDER (being replaced): decodes without a bound.
"""

from __future__ import annotations

from typing import Any

from numcodecs.abc import Codec


def decode_bounded(codec: Codec, payload: Any, expected_nbytes: int) -> Any:
    """``codec``'s decoding of ``payload``, which must be exactly ``expected_nbytes`` bytes."""
    return codec.decode(payload)
