"""References to cached values: ``MemorizedResult`` (stored) and ``NotMemorizedResult`` (not)."""

from __future__ import annotations

import pprint
from typing import Any

from zoblib.memory.maintenance import maintenance_errors
from zoblib.memory.store import EntryNotFoundError, EntryUnreadableError, StoreBackend


class MemorizedResult:
    """A small, picklable reference to one cached result, returned by ``call_and_shelve``.

    Send it to another process or keep it; :meth:`get` loads the value from the store.

    Attributes
    ----------
    func_id : str
        The cached function's id (``<module>/<qualified name>``).
    args_id : str
        The hash naming the call's entry.
    location : str
        The cache's location.
    mmap_mode : str or None
        How :meth:`get` loads arrays (see ``zoblib.load``).
    """

    def __init__(
        self,
        store: StoreBackend,
        func_id: str,
        args_id: str,
        *,
        mmap_mode: str | None = None,
        verbose: int = 0,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.store_backend = store
        self.func_id = func_id
        self.args_id = args_id
        self.mmap_mode = mmap_mode
        self.verbose = verbose
        self._metadata = metadata

    @property
    def func(self) -> str:
        """The cached function's id (joblib's name for it)."""
        return self.func_id

    @property
    def location(self) -> str:
        return self.store_backend.location

    @property
    def metadata(self) -> dict[str, Any]:
        """The entry's metadata (duration, input_args, time, size); {} if it is gone."""
        if self._metadata is None:
            try:
                self._metadata = self.store_backend.read_metadata(self.func_id, self.args_id)
            except (EntryNotFoundError, EntryUnreadableError):
                return {}
        return self._metadata

    @property
    def duration(self) -> float | None:
        value = self.metadata.get("duration")
        return float(value) if isinstance(value, (int, float)) else None

    def get(self) -> Any:
        """Load the cached value.

        Raises
        ------
        KeyError
            If the entry was cleared, evicted or damaged since (as joblib does).
        """
        try:
            value = self.store_backend.load_output(self.func_id, self.args_id, self.mmap_mode)
        except (EntryNotFoundError, EntryUnreadableError) as exc:
            where = self.store_backend.entry_location(self.func_id, self.args_id)
            raise KeyError(
                "Error while trying to load a MemorizedResult's value. It seems that this folder "
                f"is corrupted or was cleared: {where}"
            ) from exc
        self.store_backend.touch(self.func_id, self.args_id)
        return value

    def clear(self) -> None:
        """Delete the cached value from the store.

        Raises
        ------
        CacheError
            If the entry cannot be deleted (a read-only cache); also an ``OSError``.
        """
        with maintenance_errors(self.store_backend.location, "remove an entry from"):
            self.store_backend.remove_entry(self.func_id, self.args_id)

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(location="{self.location}", func="{self.func_id}", '
            f'args_id="{self.args_id}")'
        )


class NotMemorizedResult:
    """Holds a value in place of a :class:`MemorizedResult` when nothing is cached."""

    __slots__ = ("valid", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.valid = True

    def get(self) -> Any:
        if not self.valid:
            raise KeyError("No value stored.")
        return self.value

    def clear(self) -> None:
        self.valid = False
        self.value = None

    def __repr__(self) -> str:
        if self.valid:
            return f"{type(self).__name__}({pprint.pformat(self.value)})"
        return f"{type(self).__name__} with no value"

    def __getstate__(self) -> dict[str, Any]:
        return {"valid": self.valid, "value": self.value}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.valid = state["valid"]
        self.value = state["value"]
