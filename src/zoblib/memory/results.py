"""References to cached values: ``MemorizedResult`` (stored) and ``NotMemorizedResult`` (not)."""

from __future__ import annotations

import os
import pprint
import time
from typing import Any

from zoblib.memory import messages
from zoblib.memory.maintenance import maintenance_errors
from zoblib.memory.registry import make_store_backend
from zoblib.memory.store import EntryNotFoundError, EntryUnreadableError, StoreBackend


class MemorizedResult:
    """A small, picklable reference to one cached result, returned by ``call_and_shelve``.

    Send it to another process or keep it; :meth:`get` loads the value from the store.

    Parameters
    ----------
    location : str, os.PathLike or StoreBackend
        The store's location, as ``store_backend.location`` gives it (``<cache>/zoblib`` for
        ``Memory("<cache>")``), or the store itself.
    call_id : tuple of str
        ``(func_id, args_id)``: the cached function's id and the hash of the call.
    backend : str, default 'local'
        The store backend's name, when ``location`` is a path or URL.
    mmap_mode : {None, 'r', 'r+', 'c'}
        How :meth:`get` loads arrays (see ``zoblib.load``).
    verbose : int, default 0
        With more than 1, :meth:`get` prints joblib's "Loading" message.
    timestamp : float, optional
        When the ``Memory`` was made, for the elapsed time in messages.
    metadata : dict, optional
        The entry's metadata, when known; otherwise it is read from the store on first use.

    Attributes
    ----------
    func_id, func : str
        The cached function's id (``<module>/<qualified name>``).
    args_id, argument_hash : str
        The hash naming the call's entry.
    store_backend : StoreBackend
        The store holding the entry.

    Examples
    --------
    >>> from zoblib.memory import Memory
    >>> memory = Memory(tmp_path / "cache", verbose=0)
    >>> reference = memory.cache(abs).call_and_shelve(-3)
    >>> again = MemorizedResult(reference.store_backend.location, (reference.func_id, reference.args_id))
    >>> again.get()
    3
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | StoreBackend,
        call_id: tuple[str, str],
        backend: str = "local",
        mmap_mode: str | None = None,
        verbose: int = 0,
        timestamp: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        func_id, args_id = call_id
        self._call_id = (func_id, args_id)
        self.store_backend = make_store_backend(backend, location, None)
        self.mmap_mode = mmap_mode
        self.verbose = verbose
        self.timestamp = timestamp
        self._metadata = metadata

    @classmethod
    def from_store(
        cls,
        store: StoreBackend,
        func_id: str,
        args_id: str,
        *,
        mmap_mode: str | None = None,
        verbose: int = 0,
        timestamp: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> MemorizedResult:
        """The reference to the entry ``args_id`` of ``func_id`` in ``store`` (what caching uses)."""
        return cls(
            store,
            (func_id, args_id),
            mmap_mode=mmap_mode,
            verbose=verbose,
            timestamp=timestamp,
            metadata=metadata,
        )

    @property
    def func_id(self) -> str:
        return self._call_id[0]

    @property
    def func(self) -> str:
        """The cached function's id (joblib's name for it)."""
        return self._call_id[0]

    @property
    def args_id(self) -> str:
        return self._call_id[1]

    @property
    def argument_hash(self) -> str:
        """The hash of the call's arguments (``args_id``, under the name joblib documents)."""
        return self._call_id[1]

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
        """How long the computation took, in seconds (None if unknown)."""
        value = self.metadata.get("duration")
        return float(value) if isinstance(value, (int, float)) else None

    def get(self) -> Any:
        """Load the cached value.

        Raises
        ------
        KeyError
            If the entry was cleared, evicted or damaged since (as joblib does).
        """
        store = self.store_backend
        where = store.entry_location(self.func_id, self.args_id)
        if self.verbose > 1:
            since_start = None if self.timestamp is None else time.time() - self.timestamp
            name = self.func_id.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
            print(messages.loading_message(name, self.metadata, since_start, self.verbose, where))
        try:
            value = store.load_output(self.func_id, self.args_id, self.mmap_mode)
        except (EntryNotFoundError, EntryUnreadableError) as exc:
            raise KeyError(
                "Error while trying to load a MemorizedResult's value. It seems that this folder "
                f"is corrupted or was cleared: {where}"
            ) from exc
        store.touch(self.func_id, self.args_id)
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

    def __getstate__(self) -> dict[str, Any]:
        # As joblib: the timestamp is this process's, meaningless elsewhere.
        state = self.__dict__.copy()
        state["timestamp"] = None
        return state


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
