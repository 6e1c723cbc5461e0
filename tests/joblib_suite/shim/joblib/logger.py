"""``joblib.logger``: ``Logger``, ``PrintTime`` and ``format_time`` bound to zoblib's."""

from zoblib.logger import Logger, PrintTime, format_time, pformat

__all__ = ["Logger", "PrintTime", "format_time", "pformat"]
