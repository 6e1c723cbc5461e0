"""Placeholders for joblib names that zoblib has no counterpart for.

A test module of joblib that imports one such name at its top still imports, so its other tests
run against zoblib; any *use* of the name fails with :class:`ShimMissingError`, naming it. Each
placeholder is listed with its reason where it is defined (``joblib/<module>.py`` of this shim).
"""

from __future__ import annotations

from typing import Any, NoReturn


class ShimMissingError(NotImplementedError):
    """A test used a joblib name that the shim does not map onto zoblib."""


class MissingName:
    """Stands for ``joblib.<module>.<name>``; every use raises ``ShimMissingError``.

    It is an instance, not a class: ``isinstance(x, placeholder)``, ``warns(placeholder)`` and
    calling it raise, so no test can pass by touching it. A class a test module derives from it
    at import time (``class MyWrapper(CompressorWrapper)``) can be defined, but not instantiated.
    """

    def __init__(self, qualified_name: str, reason: str) -> None:
        object.__setattr__(self, "_qualified_name", qualified_name)
        object.__setattr__(self, "_reason", reason)

    def _fail(self) -> NoReturn:
        raise ShimMissingError(f"joblib shim: {self._qualified_name} is not provided ({self._reason})")

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._fail()

    def __getattr__(self, attribute: str) -> NoReturn:
        if attribute.startswith("__") and attribute.endswith("__"):
            # Introspection (pytest's collection, copy, inspect) must see a plain object.
            raise AttributeError(attribute)
        self._fail()

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        fail = self._fail

        class MissingBase:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                fail()

        MissingBase.__qualname__ = MissingBase.__name__ = f"Missing[{self._qualified_name}]"
        return (MissingBase,)

    def __iter__(self) -> NoReturn:
        self._fail()

    def __len__(self) -> NoReturn:
        self._fail()

    def __contains__(self, item: object) -> NoReturn:
        self._fail()

    def __getitem__(self, key: object) -> NoReturn:
        self._fail()

    def __bool__(self) -> NoReturn:
        self._fail()

    def __repr__(self) -> str:
        return f"<joblib shim: {self._qualified_name} is not provided>"


#: Why a name is missing; the expected-failures list cites the same causes.
NO_ZOBLIB_NAME = "a public joblib name zoblib does not have"
JOBLIB_PRIVATE = "a private joblib helper: zoblib has no such internal"
JOBLIB_FORMAT = "joblib's pickle format internals: zoblib writes Zarr/HDF5 archives"
