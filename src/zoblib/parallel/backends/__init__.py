"""Parallel backends: the contract in ``base``, one module per built-in backend."""

from __future__ import annotations

from zoblib.parallel.backends.base import ParallelBackendBase

__all__ = ["ParallelBackendBase"]
