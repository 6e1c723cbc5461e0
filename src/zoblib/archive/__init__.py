"""The archive format: dump/load, the pickle skeleton, codecs, containers and lazy arrays."""

from zoblib.archive.api import dump, load
from zoblib.archive.compression import register_compressor
from zoblib.archive.lazy import LazyArray
from zoblib.archive.verify import verify

__all__ = ["LazyArray", "dump", "load", "register_compressor", "verify"]
