"""``zoblib.__all__`` is sorted, complete, and names only what exists (after httpx's test)."""

from __future__ import annotations

import types

import zoblib


def test_all_is_sorted_and_unique() -> None:
    assert zoblib.__all__ == sorted(zoblib.__all__)
    assert len(set(zoblib.__all__)) == len(zoblib.__all__)


def test_all_names_exist() -> None:
    missing = [name for name in zoblib.__all__ if not hasattr(zoblib, name)]
    assert missing == []


def test_every_public_member_is_exported() -> None:
    public = {
        name
        for name, member in vars(zoblib).items()
        if not name.startswith("_") and not isinstance(member, types.ModuleType)
    }
    assert public - set(zoblib.__all__) == set()


def test_exported_members_are_not_modules() -> None:
    modules = [name for name in zoblib.__all__ if isinstance(getattr(zoblib, name), types.ModuleType)]
    assert modules == []


def test_joblib_persistence_names_are_exported() -> None:
    for name in ("dump", "load", "register_compressor", "__version__"):
        assert name in zoblib.__all__


def test_every_name_of_joblibs_all_is_exported() -> None:
    # The drop-in promise: `import zoblib as joblib` finds every public name of joblib 1.6.0.
    import joblib

    assert set(joblib.__all__) - set(zoblib.__all__) == set()


def test_joblibs_aliases_are_zoblibs_objects() -> None:
    import zoblib.memory

    assert zoblib.StoreBackendBase is zoblib.memory.StoreBackend
    assert zoblib.memory.StoreBackendBase is zoblib.memory.StoreBackend
    assert zoblib.memory.JobLibCollisionWarning is zoblib.CacheCollisionWarning
    assert issubclass(zoblib.CacheCollisionWarning, zoblib.CacheWarning)
