"""The request counter of the remote-archive tests (the S3 server is in ``tests/s3_server.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Requests:
    """The requests s3fs sent since the last :meth:`reset`: ``(operation, Range header)``."""

    seen: list[tuple[str, str | None]] = field(default_factory=list)

    def reset(self) -> None:
        self.seen.clear()

    def operations(self, name: str) -> list[tuple[str, str | None]]:
        return [entry for entry in self.seen if entry[0] == name]

    def range_sizes(self) -> list[int]:
        """The byte count of every ``bytes=start-end`` range asked for (suffix ranges left out)."""
        sizes = []
        for _, header in self.seen:
            if header and header.startswith("bytes=") and not header.startswith("bytes=-"):
                start, _, end = header[len("bytes=") :].partition("-")
                if end:
                    sizes.append(int(end) - int(start) + 1)
        return sizes

    def __len__(self) -> int:
        return len(self.seen)
