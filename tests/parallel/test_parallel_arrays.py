"""Arrays by reference: memmaps in workers, results by file, temporary files always removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from parallel_helpers import describe_array, fail_on, filled, identity, sleep_then_return, write_into

from zoblib.parallel import Parallel, delayed
from zoblib.parallel.arrays import file_backing, open_shared, write_shared
from zoblib.parallel.tempfolder import call_folder_name, remove_leftovers

BIG = 300_000  # float64 elements: 2.4 MB, above the default max_nbytes of 1M


def test_big_arrays_arrive_as_read_only_memmaps_and_small_ones_as_arrays(temp_root: Path) -> None:
    big, small = np.arange(float(BIG)), np.arange(10.0)
    seen_big, seen_small = Parallel(n_jobs=2, temp_folder=temp_root)(
        delayed(describe_array)(array) for array in (big, small)
    )
    assert seen_big["type"] is np.memmap
    assert seen_big["writeable"] is False
    assert temp_root in Path(seen_big["filename"]).parents
    assert seen_big["sum"] == big.sum()
    assert seen_small["type"] is np.ndarray
    assert seen_small["writeable"] is True


@pytest.mark.parametrize("switch_off", [{"max_nbytes": None}, {"mmap_mode": None}])
def test_max_nbytes_none_or_mmap_mode_none_switch_it_off(switch_off: dict[str, None]) -> None:
    (seen,) = Parallel(n_jobs=2, **switch_off)([delayed(describe_array)(np.arange(float(BIG)))])
    assert seen["type"] is np.ndarray
    assert seen["writeable"] is True


def test_max_nbytes_threshold_is_respected() -> None:
    array = np.arange(1000.0)  # 8000 bytes

    def kind(**options: object) -> type:
        (seen,) = Parallel(n_jobs=2, **options)([delayed(describe_array)(array)])
        return seen["type"]

    assert kind() is np.ndarray  # below the default 1M
    assert kind(max_nbytes="8K") is np.ndarray  # 8000 <= 8192
    assert kind(max_nbytes=7999) is np.memmap


def test_mmap_mode_c_gives_workers_a_writable_private_view() -> None:
    array = np.zeros(BIG)
    (seen,) = Parallel(n_jobs=2, mmap_mode="c")([delayed(describe_array)(array)])
    assert seen["type"] is np.memmap and seen["writeable"] is True


def test_an_array_is_written_once_per_call(temp_root: Path) -> None:
    array = np.ones(BIG)
    seen = Parallel(n_jobs=2, temp_folder=temp_root, batch_size=1)(
        delayed(describe_array)(array) for _ in range(8)
    )
    assert len({entry["filename"] for entry in seen}) == 1


def test_a_memmap_of_a_file_is_passed_by_its_path(tmp_path: Path, temp_root: Path) -> None:
    path = tmp_path / "data.npy"
    np.save(path, np.arange(float(BIG)))
    mapped = np.load(path, mmap_mode="r")
    view = mapped[1000:2000]
    seen_whole, seen_view = Parallel(n_jobs=2, temp_folder=temp_root)(
        delayed(describe_array)(array) for array in (mapped, view)
    )
    assert seen_whole["filename"] == str(path)  # no copy
    assert seen_view["filename"] == str(path)
    assert seen_view["sum"] == view.sum()


@pytest.mark.parametrize("suffix", [".zarr", ".pkl"], ids=["zarr-directory", "zip"])
def test_an_array_loaded_from_a_zoblib_archive_is_passed_by_its_path(
    tmp_path: Path, temp_root: Path, suffix: str
) -> None:
    import zoblib

    path = tmp_path / f"archive{suffix}"
    zoblib.dump({"x": np.arange(float(BIG))}, path)
    loaded = zoblib.load(path, mmap_mode="r")["x"]
    assert isinstance(loaded, np.memmap)
    (seen,) = Parallel(n_jobs=2, temp_folder=temp_root)([delayed(describe_array)(loaded)])
    assert seen["filename"].startswith(str(path))  # the archive's own bytes, no copy
    assert seen["sum"] == loaded.sum()


def test_workers_write_into_a_shared_memmap(tmp_path: Path) -> None:
    shared = np.memmap(tmp_path / "out.bin", dtype=np.float64, mode="w+", shape=(8,))
    Parallel(n_jobs=2)(delayed(write_into)(shared, i, i * 1.5) for i in range(8))
    assert shared.tolist() == [i * 1.5 for i in range(8)]


def test_non_contiguous_and_fortran_arrays_arrive_intact() -> None:
    base = np.arange(float(BIG * 2)).reshape(600, -1)
    arrays = [base[:, ::2], np.asfortranarray(base)]
    results = Parallel(n_jobs=2)(delayed(identity)(array) for array in arrays)
    for sent, received in zip(arrays, results, strict=True):
        np.testing.assert_array_equal(sent, received)


def test_object_arrays_are_pickled() -> None:
    array = np.array([{"a": i} for i in range(BIG // 10)] * 10, dtype=object)
    (seen,) = Parallel(n_jobs=2)([delayed(describe_array)(array)])
    assert seen["type"] is np.ndarray


def test_big_results_come_back_by_reference_as_ordinary_arrays(temp_root: Path) -> None:
    results = Parallel(n_jobs=2, temp_folder=temp_root)(delayed(filled)((400, 1000), i) for i in range(4))
    for i, result in enumerate(results):
        assert type(result) is np.ndarray
        assert result.flags.writeable
        assert isinstance(result.base, np.memmap)  # came as a file, not through the pipe
        assert (result == i).all()
        result[0, 0] = -1  # copy-on-write: a private change
    small = Parallel(n_jobs=2)(delayed(filled)((10,), i) for i in range(2))
    assert not any(isinstance(result.base, np.memmap) for result in small)
    assert os.listdir(temp_root) == []


def test_big_results_come_back_as_memmaps_when_asked(temp_root: Path) -> None:
    parallel = Parallel(n_jobs=2, temp_folder=temp_root, return_memmaps=True)
    results = parallel(delayed(filled)((400, 1000), i) for i in range(3))
    for i, result in enumerate(results):
        assert isinstance(result, np.memmap)
        assert result.flags.writeable and (result == i).all()
        result[0, 0] = -1  # copy-on-write: private, and the call's files are gone already
        assert result[0, 0] == -1
    assert os.listdir(temp_root) == []
    small = Parallel(n_jobs=2, return_memmaps=True)(delayed(filled)((10,), i) for i in range(2))
    assert not any(isinstance(result, np.memmap) for result in small)


def test_result_that_is_the_input_memmap_comes_back_as_an_ordinary_array() -> None:
    array = np.arange(float(BIG))
    (result,) = Parallel(n_jobs=2)([delayed(identity)(array)])
    assert type(result) is np.ndarray and result.flags.writeable
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_temp_folder_is_empty_after_a_call_and_after_an_error(temp_root: Path, backend: str) -> None:
    array = np.ones(BIG)
    Parallel(n_jobs=2, backend=backend, temp_folder=temp_root)(
        delayed(describe_array)(array) for _ in range(3)
    )
    assert os.listdir(temp_root) == []
    with pytest.raises(ValueError):
        Parallel(n_jobs=2, backend=backend, temp_folder=temp_root)(delayed(fail_on)(i, 1) for i in range(4))
    assert os.listdir(temp_root) == []


def test_temp_folder_is_empty_after_an_abandoned_generator(temp_root: Path) -> None:
    array = np.ones(BIG)
    output = Parallel(n_jobs=2, temp_folder=temp_root, return_as="generator", batch_size=1)(
        delayed(sleep_then_return)(0.05, array) for _ in range(20)
    )
    next(output)
    assert len(os.listdir(temp_root)) == 1
    output.close()
    assert os.listdir(temp_root) == []


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_dead_processes_are_removed_by_the_next_call(temp_root: Path) -> None:
    pid = dead_pid()
    dead = temp_root / call_folder_name(pid)
    dead.mkdir()
    (dead / "array.npy").write_bytes(b"x" * 100)
    alive = temp_root / call_folder_name(os.getppid())
    other_host = temp_root / f"zoblib_parallel_{pid}_0another0_abc"
    unrelated = temp_root / "not_ours"
    for folder in (alive, other_host, unrelated):
        folder.mkdir()
    Parallel(n_jobs=2, temp_folder=temp_root)([delayed(describe_array)(np.ones(BIG))])
    assert sorted(os.listdir(temp_root)) == sorted([alive.name, other_host.name, unrelated.name])


def test_parent_exit_removes_the_folder(tmp_path: Path, temp_root: Path) -> None:
    # A generator left open when the interpreter exits: its folder goes at exit.
    script = tmp_path / "exit.py"
    script.write_text(
        "import numpy as np, sys\n"
        "from zoblib.parallel import Parallel, delayed\n"
        "from parallel_helpers import sleep_then_return\n"
        "if __name__ == '__main__':\n"
        f"    out = Parallel(n_jobs=2, temp_folder={str(temp_root)!r}, return_as='generator')(\n"
        "        delayed(sleep_then_return)(0.01, np.ones(300_000)) for _ in range(4))\n"
        "    next(out)\n"
        "    print(len(__import__('os').listdir(sys.argv[1])))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(
        [sys.executable, str(script), str(temp_root)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert os.listdir(temp_root) == []


# -- the building blocks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24.0).reshape(4, 6),
        np.asfortranarray(np.arange(24.0).reshape(4, 6)),
        np.arange(10.0)[::3],
        np.zeros(5, dtype=[("x", "<i4"), ("y", ">f8")]),
        np.array(3.5),
    ],
    ids=["c", "fortran", "strided", "structured", "0d"],
)
def test_write_then_open_round_trips(tmp_path: Path, array: np.ndarray) -> None:
    ref = write_shared(array, str(tmp_path))
    opened = open_shared(ref)
    assert isinstance(opened, np.memmap)
    assert not opened.flags.writeable
    np.testing.assert_array_equal(opened, array)
    assert opened.dtype == array.dtype


def test_write_shared_does_not_create_the_folder(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_shared(np.ones(3), str(tmp_path / "gone"))
    assert not (tmp_path / "gone").exists()


def test_file_backing_finds_the_bytes_of_views(tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    mapped = np.memmap(path, dtype=np.int32, mode="w+", shape=(100, 10), offset=16)
    mapped[:] = np.arange(1000).reshape(100, 10)
    for view in (mapped, mapped[7:19], np.asarray(mapped[50:]), mapped[3]):
        ref = file_backing(view)
        assert ref is not None and ref.path == str(path) and ref.mode == "r+"
        np.testing.assert_array_equal(open_shared(ref), view)
    assert file_backing(mapped[:, 2]) is None  # not contiguous: copied instead
    assert file_backing(np.ones(3)) is None
    readonly = np.memmap(path, dtype=np.int32, mode="r", shape=(100, 10), offset=16)
    assert file_backing(readonly).mode == "r"  # type: ignore[union-attr]
    copy_on_write = np.memmap(path, dtype=np.int32, mode="c", shape=(100, 10), offset=16)
    assert file_backing(copy_on_write) is None  # may hold private changes


def test_remove_leftovers_keeps_live_processes(tmp_path: Path) -> None:
    mine = tmp_path / call_folder_name(os.getpid())
    mine.mkdir()
    assert remove_leftovers(str(tmp_path)) == []
    assert mine.exists()


def test_an_array_that_cannot_be_written_goes_through_the_pipe(tmp_path: Path) -> None:
    from zoblib.parallel.pickling import ArrayPassing, dumps, loads

    passing = ArrayPassing(str(tmp_path / "gone"), max_nbytes=0, mode="r")
    array = np.arange(1000.0)
    assert passing.reference_for(array) is None  # the folder is gone: no reference
    np.testing.assert_array_equal(loads(dumps([array], passing))[0], array)
