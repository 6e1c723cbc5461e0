"""Memory's public API matches joblib 1.6.0's: signatures, errors, MemorizedResult, .gitignore.

joblib is installed for the tests; its signatures are read from it, not restated here.
"""

from __future__ import annotations

import inspect
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import joblib.memory
import numpy as np
import pytest
from memory_helpers import Counter

import zoblib
import zoblib.memory
from zoblib.errors import CacheWarning, UnknownStoreBackendError
from zoblib.memory import MemorizedFunc, MemorizedResult, Memory, NotMemorizedFunc, register_store_backend
from zoblib.memory.index import INDEX_NAME

GITIGNORE_TEXT = "# Created by zoblib automatically.\n*\n"
#: Arrays this long are stored apart from the pickle, so ``mmap_mode`` maps them.
BIG = 100_000


def _double(x: int) -> int:
    return 2 * x


# ---- signatures --------------------------------------------------------------------------------

SIGNATURE_PAIRS = [
    ("Memory", joblib.Memory, zoblib.Memory),
    ("Memory.cache", joblib.Memory.cache, zoblib.Memory.cache),
    ("Memory.clear", joblib.Memory.clear, zoblib.Memory.clear),
    ("Memory.reduce_size", joblib.Memory.reduce_size, zoblib.Memory.reduce_size),
    ("Memory.eval", joblib.Memory.eval, zoblib.Memory.eval),
    ("MemorizedFunc", joblib.memory.MemorizedFunc, zoblib.memory.MemorizedFunc),
    ("MemorizedFunc.clear", joblib.memory.MemorizedFunc.clear, zoblib.memory.MemorizedFunc.clear),
    ("MemorizedResult", joblib.MemorizedResult, zoblib.MemorizedResult),
    ("register_store_backend", joblib.register_store_backend, zoblib.register_store_backend),
    ("expires_after", joblib.expires_after, zoblib.expires_after),
]


@pytest.mark.parametrize(("name", "theirs", "ours"), SIGNATURE_PAIRS, ids=[p[0] for p in SIGNATURE_PAIRS])
def test_signatures_are_joblibs(name: str, theirs: Callable[..., Any], ours: Callable[..., Any]) -> None:
    """Every joblib parameter, in joblib's order, kind and default; extras only keyword-only."""
    joblib_parameters = list(inspect.signature(theirs).parameters.values())
    zoblib_parameters = list(inspect.signature(ours).parameters.values())
    described = [(p.name, p.kind, p.default) for p in zoblib_parameters[: len(joblib_parameters)]]
    assert described == [(p.name, p.kind, p.default) for p in joblib_parameters], name
    extras = zoblib_parameters[len(joblib_parameters) :]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extras), (name, extras)


def test_sixth_positional_argument_of_memory_is_backend_options(location: Path) -> None:
    memory = Memory(location, "local", None, False, 0, {"container": "zip"})
    cached = memory.cache(np.arange)
    assert len(cached(100_000)) == 100_000  # not a small result: an archive, in a ZIP file
    (entry,) = memory.list_entries()
    assert (Path(entry.location) / "output.pkl").is_file()
    with pytest.raises(TypeError):
        Memory(location, "local", None, False, 0, None, "1G")  # type: ignore[call-arg]


# ---- MemorizedResult ---------------------------------------------------------------------------


def test_memorized_result_built_with_joblibs_signature(memory: Memory) -> None:
    cached = memory.cache(np.arange)
    reference = cached.call_and_shelve(BIG)  # small arrays stay in the pickle: never memmaps
    assert isinstance(reference, MemorizedResult)
    call_id = (reference.func_id, reference.args_id)
    store_location = reference.store_backend.location
    assert store_location == memory.store_backend.location  # type: ignore[union-attr]

    again = MemorizedResult(store_location, call_id, "local", "r", 0, None, None)
    value = again.get()
    assert isinstance(value, np.memmap) and value.mode == "r"
    np.testing.assert_array_equal(value, np.arange(BIG))
    assert isinstance(MemorizedResult(Path(store_location), call_id).get(), np.ndarray)
    assert not isinstance(MemorizedResult(store_location, call_id).get(), np.memmap)

    assert again.func == again.func_id == cached.func_id
    assert again.args_id == again.argument_hash == reference.args_id
    assert again.metadata["input_args"]["start_or_stop"] == str(BIG)
    assert isinstance(again.duration, float) and again.duration == reference.metadata["duration"]
    assert repr(again) == (
        f'MemorizedResult(location="{store_location}", func="{cached.func_id}", '
        f'args_id="{reference.args_id}")'
    )
    assert repr(again) == repr(reference)


def test_memorized_result_with_metadata_given_does_not_read_it(memory: Memory) -> None:
    reference = memory.cache(_double).call_and_shelve(3)
    given = MemorizedResult(
        reference.store_backend.location,
        (reference.func_id, reference.args_id),
        metadata={"duration": 1.5},
        timestamp=12.0,
    )
    assert given.metadata == {"duration": 1.5} and given.duration == 1.5
    assert given.timestamp == 12.0
    assert given.get() == 6


def test_memorized_result_clear_and_a_missing_entry(memory: Memory) -> None:
    reference = memory.cache(_double).call_and_shelve(4)
    reference.clear()
    with pytest.raises(KeyError, match="is corrupted"):
        reference.get()
    reference.clear()  # nothing left: no error
    gone = MemorizedResult(reference.store_backend.location, (reference.func_id, reference.args_id))
    assert gone.metadata == {} and gone.duration is None
    with pytest.raises(KeyError):
        gone.get()


def test_memorized_result_pickles_without_its_timestamp(memory: Memory) -> None:
    reference = memory.cache(_double).call_and_shelve(5)
    assert reference.timestamp == memory.timestamp
    restored = pickle.loads(pickle.dumps(reference))
    assert restored.timestamp is None
    assert (restored.func, restored.args_id, str(restored)) == (
        reference.func,
        reference.args_id,
        str(reference),
    )
    assert restored.store_backend.location == reference.store_backend.location
    assert restored.get() == 10


def test_memorized_result_rebuilt_from_its_call_id_in_a_fresh_process(memory: Memory) -> None:
    reference = memory.cache(np.arange).call_and_shelve(BIG)
    code = (
        "import sys, numpy as np\n"
        "from zoblib import MemorizedResult\n"
        "result = MemorizedResult(sys.argv[1], (sys.argv[2], sys.argv[3]), mmap_mode='r')\n"
        "value = result.get()\n"
        "assert isinstance(value, np.memmap), type(value)\n"
        "print(value.sum(), result.duration is not None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, reference.store_backend.location, reference.func_id, reference.args_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(BIG * (BIG - 1) // 2), "True"]


def test_verbose_memorized_result_prints_joblibs_loading_message(
    location: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cached = Memory(location, verbose=0).cache(_double)
    reference = cached.call_and_shelve(2)
    verbose = MemorizedResult(
        reference.store_backend.location, (reference.func_id, reference.args_id), verbose=2
    )
    capsys.readouterr()
    assert verbose.get() == 4
    assert capsys.readouterr().out == "[Memory]: Loading _double(x=2)...\n"


# ---- store backends and locations --------------------------------------------------------------


def test_unknown_backend_is_a_type_error_as_in_joblib(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"^Unknown location .* or backend unknown") as info:
        Memory(location=str(tmp_path / "joblib"), backend="unknown")
    assert isinstance(info.value, UnknownStoreBackendError)
    assert isinstance(info.value, ValueError)
    assert "known backends: fsspec, local" in str(info.value)


def test_unknown_backend_options_are_ignored_with_a_warning_as_joblib_ignores_them(location: Path) -> None:
    with pytest.warns(CacheWarning, match=r"ignores the backend_options compress, parameter \(it takes"):
        memory = Memory(
            location, verbose=0, backend_options={"parameter": "unused", "compress": 3, "fsync": True}
        )
    # The options the store takes still apply; the call works.
    assert memory.store_backend.fsync is True
    assert memory.cache(_double)(3) == 6


@pytest.mark.parametrize("name", [None, {}, []])
def test_register_store_backend_refuses_a_name_that_is_not_a_string(name: Any) -> None:
    with pytest.raises(ValueError, match=r"^Store backend name should be a string"):
        register_store_backend(name, zoblib.memory.LocalStoreBackend)


@pytest.mark.parametrize("backend", [None, dict, 3])
def test_register_store_backend_refuses_what_is_not_a_store_class(backend: Any) -> None:
    with pytest.raises(ValueError, match=r"^Store backend should inherit StoreBackendBase"):
        register_store_backend("fs", backend)
    assert "fs" not in zoblib.memory.STORE_BACKENDS


def test_location_of_another_type_warns_and_caches_nothing(counter: Counter) -> None:
    class NotALocation:
        pass

    with pytest.warns(
        UserWarning, match="Instantiating a backend using a NotALocation as a location"
    ) as seen:
        memory = Memory(NotALocation(), verbose=0)  # type: ignore[arg-type]
    assert issubclass(seen[0].category, CacheWarning)
    assert memory.store_backend is None

    def f(x: int) -> int:
        counter(x)
        return x

    cached = memory.cache(f)
    assert isinstance(cached, NotMemorizedFunc)
    assert cached(1) == cached(1) == 1
    assert len(counter) == 2


def test_store_location_is_the_zoblib_folder_of_the_location(location: Path) -> None:
    for given in (location, str(location), f"file://{location}"):
        memory = Memory(given, verbose=0)
        store = memory.store_backend
        assert store is not None and store.location == str(location / "zoblib")
        assert repr(memory) == f"Memory(location={store.location})"
        cached = memory.cache(_double)
        assert repr(cached) == f"MemorizedFunc(func={_double}, location={store.location})"
    assert memory.location == f"file://{location}"


def test_a_memorized_func_uses_its_location_as_the_store_folder(tmp_path: Path) -> None:
    # As joblib: only Memory adds a subfolder; MemorizedFunc(func, location) uses it as it is.
    direct = MemorizedFunc(_double, str(tmp_path / "store"), verbose=0)
    assert direct(3) == 6
    assert direct.store_backend.location == str(tmp_path / "store")
    (entry,) = direct.list_entries()
    assert Path(entry.location).parent.parent.parent.parent == tmp_path / "store"  # <func>/<2 hex>/


def test_a_tilde_in_the_location_is_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    memory = Memory("~/cache", verbose=0)
    assert memory.store_backend is not None
    assert memory.store_backend.location == str(tmp_path / "cache" / "zoblib")
    assert memory.cache(_double)(1) == 2
    assert (tmp_path / "cache" / "zoblib").is_dir()
    assert not (tmp_path / "~").exists()


def test_clear_leaves_the_store_folder_empty(location: Path) -> None:
    memory = Memory(location, verbose=0)
    cached = memory.cache(_double)
    cached(1)
    memory.cache(np.arange)(3)
    memory.clear(warn=False)
    assert memory.store_backend is not None
    # The index stays (other processes may have it open), emptied: it is a hidden file.
    assert [n for n in os.listdir(memory.store_backend.location) if not n.startswith(INDEX_NAME)] == []
    assert memory.store_backend.totals() == (0, 0)
    assert (location / ".gitignore").read_text() == GITIGNORE_TEXT
    assert not cached.check_call_in_cache(1)


def test_negative_age_limit_raises_joblibs_error(memory: Memory) -> None:
    import datetime

    memory.cache(_double)(1)
    with pytest.raises(ValueError, match="has to be a positive"):
        memory.reduce_size(age_limit=datetime.timedelta(seconds=-1))


# ---- .gitignore --------------------------------------------------------------------------------


@pytest.mark.parametrize("as_text", [False, True], ids=["Path", "str"])
def test_memory_writes_a_gitignore_in_the_cache_folder(tmp_path: Path, as_text: bool) -> None:
    location = tmp_path / "test_cache_dir"
    memory = Memory(str(location) if as_text else location, verbose=0)
    assert not (location / ".gitignore").exists(), "written on the first write, not before"
    memory.cache(id)(0)
    assert (location / ".gitignore").read_text() == GITIGNORE_TEXT
    assert not (location / "zoblib" / ".gitignore").exists()


def test_a_gitignore_already_there_is_kept(tmp_path: Path) -> None:
    location = tmp_path / "test_cache_dir"
    location.mkdir()
    (location / ".gitignore").write_text("# Existing .gitignore file!")
    Memory(location, verbose=0).cache(id)(0)
    assert (location / ".gitignore").read_text() == "# Existing .gitignore file!"


def test_a_store_folder_not_named_zoblib_gets_the_gitignore_itself(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    MemorizedFunc(_double, folder, verbose=0)(2)
    assert (folder / ".gitignore").read_text() == GITIGNORE_TEXT
    assert not (tmp_path / ".gitignore").exists()


def test_reading_a_cache_never_writes_the_gitignore(location: Path) -> None:
    Memory(location, verbose=0).cache(_double)(1)
    (location / ".gitignore").unlink()
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_memory_joblib_compat import _double\n"
        "from zoblib.memory import Memory\n"
        "cached = Memory(sys.argv[1], verbose=0).cache(_double)\n"
        "assert cached(1) == 2 and cached.last_status.hit\n"
    )
    here = str(Path(__file__).parent)
    done = subprocess.run(
        [sys.executable, "-c", code, str(location), here], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert not (location / ".gitignore").exists()


def test_verbose_20_logs_each_lookup_at_info(location: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO)
    Memory(location, verbose=20).cache(_double)(3)
    assert "Querying _double with signature _double(3)" in caplog.text
    caplog.clear()
    Memory(location, verbose=0).cache(_double)(3)
    assert "Querying" not in caplog.text
