"""``dump``/``load``/``verify(..., progress=...)`` and ``zoblib verify --progress``: bars of bytes.

Real tqdm draws into the captured stderr; the fallback bar is tested in a child interpreter
where tqdm cannot be imported (``sys.modules['tqdm'] = None``), as on a machine without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import tqdm
import tqdm.auto

import zoblib
from zoblib.progress import ByteCounter, TextBar, byte_progress, open_bar, tqdm_class

MiB = 1 << 20


def big_value() -> dict[str, Any]:
    """One 24 MiB array stored alone (3 stream pieces), a Fortran one, and packed small ones."""
    rng = np.random.default_rng(0)
    return {
        "big": rng.random(3 * MiB),
        "fortran": np.asfortranarray(rng.random((700, 300))),
        "small": [np.arange(20_000 + i) for i in range(10)],
    }


class Recorder:
    """A ``progress=`` function that records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def check_advanced_in_steps(self, minimum_steps: int) -> None:
        """The count rose from 0 to the total, step by step, never backwards."""
        dones = [done for done, _ in self.calls]
        totals = {total for _, total in self.calls}
        assert len(totals) == 1 and (total := totals.pop()) > 0
        assert dones[0] == 0 and dones[-1] == total
        assert dones == sorted(dones)
        # Not 0 -> 100 % at the end: counts on the way, within the arrays.
        assert len({done for done in dones if 0 < done < total}) >= minimum_steps, dones


def expected_total(value: dict[str, Any]) -> int:
    return value["big"].nbytes + value["fortran"].nbytes + sum(a.nbytes for a in value["small"])


@pytest.mark.parametrize("compress", [0, 3])
def test_bytes_advance_chunk_by_chunk(archive: Any, compress: int) -> None:
    value = big_value()
    dumped, loaded = Recorder(), Recorder()
    archive.dump(value, compress=compress, chunk_nbytes=4 * MiB, progress=dumped)
    dumped.check_advanced_in_steps(minimum_steps=4)
    # The skeleton (a few hundred bytes) comes on top of the arrays.
    assert 0 <= dumped.calls[-1][1] - expected_total(value) < 4096
    result = archive.load(progress=loaded)
    loaded.check_advanced_in_steps(minimum_steps=4)
    assert loaded.calls[-1][1] == dumped.calls[-1][1]
    np.testing.assert_array_equal(result["big"], value["big"])
    if archive.container != "fileobj":
        checked = Recorder()
        zoblib.verify(archive.path, progress=checked)
        checked.check_advanced_in_steps(minimum_steps=4)


def test_real_tqdm_bar_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.pkl"
    value = big_value()
    zoblib.dump(value, path, progress=True)
    zoblib.load(path, progress=True)
    zoblib.verify(path, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line]
    finals = [line for line in lines if "100%|" in line]
    assert len(finals) == 3, lines  # dump, load, verify: each reached its total
    total = tqdm.tqdm.format_sizeof(expected_total(value), divisor=1024)
    for line in finals:
        assert line.startswith("model.pkl: 100%|")
        assert f"/{total}" in line and "B/s]" in line  # tqdm's rate, in bytes
    assert any("model.pkl:" in line and "100%" not in line for line in lines)  # drawn on the way


def test_quiet_by_default(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.zarr"
    zoblib.dump(big_value(), path)
    zoblib.load(path)
    zoblib.verify(path)
    assert capfd.readouterr() == ("", "")


def test_damage_midway_closes_the_bar_where_it_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "damaged.zarr"
    zoblib.dump(big_value(), path)
    last_chunk = max((path / "arrays" / "big").rglob("c/*"), key=lambda p: p.stat().st_size)
    with open(last_chunk, "r+b") as file:
        file.seek(20 * MiB)
        file.write(b"\xff")
    with pytest.raises(zoblib.ChecksumError):
        zoblib.load(path, progress=True)
    with pytest.raises(zoblib.ChecksumError):
        zoblib.verify(path, progress=True)
    err = capsys.readouterr().err
    assert "damaged.zarr:" in err and "100%" not in err
    assert err.endswith("\n")  # closed: the next output starts on a line of its own


def test_mmap_load_counts_what_it_reads(tmp_path: Path) -> None:
    path = tmp_path / "mapped.pkl"
    zoblib.dump(big_value(), path)
    mapped, checked = Recorder(), Recorder()
    zoblib.load(path, mmap_mode="r", progress=mapped)
    assert mapped.calls[-1][1] < 4096  # the skeleton only: the arrays are mapped, not read
    zoblib.load(path, mmap_mode="r", verify=True, progress=checked)
    checked.check_advanced_in_steps(minimum_steps=3)


def test_remote_archive(tmp_path: Path) -> None:
    url = "memory://progress-test/model.zarr"
    written, read = Recorder(), Recorder()
    zoblib.dump(big_value(), url, progress=written)
    zoblib.load(url, progress=read)
    written.check_advanced_in_steps(minimum_steps=3)
    read.check_advanced_in_steps(minimum_steps=3)


def test_joblib_file_counts_its_size(tmp_path: Path) -> None:
    path = tmp_path / "old.joblib"
    joblib.dump({"x": np.ones(100_000)}, path)
    recorder = Recorder()
    zoblib.load(path, progress=recorder)
    assert recorder.calls[-1] == (path.stat().st_size, path.stat().st_size)


def test_invalid_progress_value(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="progress must be True, False or a function"):
        zoblib.dump([1], tmp_path / "x.pkl", progress="yes")  # type: ignore[arg-type]
    assert not (tmp_path / "x.pkl").exists()


def test_failing_callback_aborts_the_dump(tmp_path: Path) -> None:
    def stop(done: int, total: int) -> None:
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zoblib.dump(big_value(), tmp_path / "x.pkl", progress=stop)
    assert os.listdir(tmp_path) == []  # nothing half-written is left


def test_tqdm_auto_draws_in_notebooks_too() -> None:
    """``tqdm.auto`` picks the Jupyter widget in a notebook kernel and the text bar elsewhere."""
    assert tqdm_class() is tqdm.auto.tqdm
    bar = open_bar(10, label="x", unit="B", stream=open(os.devnull, "w"))  # noqa: SIM115
    try:
        assert type(bar) is tqdm.auto.tqdm
    finally:
        bar.close()


def test_counter_never_passes_its_total() -> None:
    recorder = Recorder()
    with byte_progress(recorder, "x", 100) as counter:
        assert isinstance(counter, ByteCounter)
        counter.advance(60)
        counter.advance(60)
        counter.reach(30)  # backwards: ignored
    assert recorder.calls == [(0, 100), (60, 100), (100, 100)]


def test_text_bar_in_bytes() -> None:
    bar = TextBar(3 * MiB, label="f.pkl", unit="B", stream=open(os.devnull, "w"), scale_bytes=True)  # noqa: SIM115
    bar.n = MiB
    assert bar.text(elapsed=1.0) == f"f.pkl:  33%|{bar._bar(1 / 3)}| 1.0MiB/3.0MiB [00:01<00:02, 1.0MiB/s]"


CHILD_WITHOUT_TQDM = textwrap.dedent(
    """
    import sys
    sys.modules["tqdm"] = None  # as if tqdm were not installed
    import numpy as np
    import zoblib
    from zoblib.progress import tqdm_class
    assert tqdm_class() is None
    path = sys.argv[1]
    zoblib.dump({"x": np.ones(3 << 20)}, path, progress=True)
    zoblib.load(path, progress=True)
    """
)


def test_text_bar_without_tqdm(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD_WITHOUT_TQDM, str(tmp_path / "f.pkl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    finals = [line for line in done.stderr.splitlines() if "100%|" in line]
    assert len(finals) == 2, done.stderr
    assert all(line.startswith("f.pkl: 100%|") and "24.0MiB/24.0MiB [" in line for line in finals)


def _verify_command(path: Path, *, without_tqdm: bool) -> subprocess.CompletedProcess[str]:
    code = "import sys\n"
    if without_tqdm:
        code += "sys.modules['tqdm'] = None\n"
    code += "from zoblib.cli.main import main\nsys.argv = ['zoblib', *sys.argv[1:]]\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", code, "verify", "--progress", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("without_tqdm", [False, True], ids=["tqdm", "no-tqdm"])
def test_cli_verify_progress(tmp_path: Path, without_tqdm: bool) -> None:
    path = tmp_path / "m.zob"
    zoblib.dump({"x": np.ones(3 << 20)}, path)
    done = _verify_command(path, without_tqdm=without_tqdm)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")
    final = done.stderr.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("m.zob: 100%|")
    if without_tqdm:
        assert "24.0MiB/24.0MiB [" in final and "iB/s]" in final  # zoblib's bar
    else:
        assert "24.0M/24.0M [" in final and "B/s]" in final  # tqdm's
