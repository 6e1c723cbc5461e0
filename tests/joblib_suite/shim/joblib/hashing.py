"""``joblib.hashing``: ``hash`` is zoblib's (whose default ``hash_name`` is ``'xxh3_128'``)."""

from zoblib import hash

__all__ = ["hash"]
