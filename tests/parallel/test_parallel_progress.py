"""verbose messages and the progress bar: tqdm's when installed, zoblib's own without it."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest
import tqdm.auto
from parallel_helpers import fail_on, sleep_then_return, square

from zoblib.parallel import Parallel, delayed, parallel_config
from zoblib.parallel.progress import Progress
from zoblib.progress import TextBar


def final_line(err: str) -> str:
    """The bar's last state: tqdm redraws with carriage returns."""
    return err.replace("\r", "\n").strip().splitlines()[-1]


def inner_call_with_a_bar(x: int) -> int:
    """A task that runs a ``Parallel`` call of its own, asking for a bar."""
    return sum(Parallel(n_jobs=1, progress_bar=True)(delayed(square)(i) for i in range(x)))


def test_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert Parallel(n_jobs=2, progress_bar=True)(delayed(square)(i) for i in range(10)) == [
        i * i for i in range(10)
    ]
    captured = capsys.readouterr()
    assert captured.out == ""
    last = final_line(captured.err)
    assert last.startswith("Parallel(n_jobs=2): 100%|")
    assert "10/10" in last
    assert "tasks/s" in last


def test_the_bar_is_tqdm_auto() -> None:
    """tqdm.auto's class: a widget in a Jupyter kernel, a text bar in a terminal."""
    progress = Progress(verbose=0, progress_bar=True, label="P", total=3, stream=io.StringIO())
    progress.begin("")
    assert type(progress._bar) is tqdm.auto.tqdm
    progress.update(3)
    progress.finish(True)
    assert progress._bar is None


def test_progress_bar_can_be_switched_on_for_a_block(capsys: pytest.CaptureFixture[str]) -> None:
    with parallel_config(progress_bar=True):
        Parallel(n_jobs=2)(delayed(square)(i) for i in range(4))
    assert "4/4" in final_line(capsys.readouterr().err)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_progress_bar_without_a_known_total(n_jobs: int, capsys: pytest.CaptureFixture[str]) -> None:
    Parallel(n_jobs=n_jobs, progress_bar=True)(delayed(square)(i) for i in range(25))
    last = final_line(capsys.readouterr().err)
    assert "100%|" in last and "25/25" in last  # the total is known once the input ends


@pytest.mark.parametrize("return_as", ["generator", "generator_unordered"])
def test_generator_results(return_as: str, capsys: pytest.CaptureFixture[str]) -> None:
    results = Parallel(n_jobs=2, return_as=return_as, progress_bar=True)(  # type: ignore[arg-type]
        delayed(square)(i) for i in range(12)
    )
    assert sorted(results) == [i * i for i in range(12)]
    last = final_line(capsys.readouterr().err)
    assert "100%|" in last and "12/12" in last


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_an_error_midway_closes_the_bar(n_jobs: int, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="bad value 3"):
        Parallel(n_jobs=n_jobs, batch_size=1, progress_bar=True)(delayed(fail_on)(i, 3) for i in range(40))
    err = capsys.readouterr().err
    assert "Parallel(n_jobs=" in err and "100%" not in err and "40/40" not in err
    assert err.endswith("\n")  # closed where it stopped, not left dangling


def test_an_abandoned_generator_closes_the_bar(capsys: pytest.CaptureFixture[str]) -> None:
    # The tasks after the first take 0.2 s each (5 s for all on two workers), so the bar is
    # closed long before the last would finish: with instant tasks the workers could finish
    # all 50 before close(), and a full bar would then be right (that flaked in CI).
    results = Parallel(n_jobs=2, return_as="generator", progress_bar=True, batch_size=1)(
        delayed(sleep_then_return)(0.0 if i == 0 else 0.2, i) for i in range(50)
    )
    assert next(results) == 0
    results.close()
    err = capsys.readouterr().err
    assert "50/50" not in err and err.endswith("\n")


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_nested_calls_draw_no_bar(backend: str, capfd: pytest.CaptureFixture[str]) -> None:
    """Inner calls in workers (processes or threads) stay quiet; the outer bar counts."""
    results = Parallel(n_jobs=2, backend=backend, progress_bar=True)(
        delayed(inner_call_with_a_bar)(x) for x in range(1, 7)
    )
    assert results == [sum(i * i for i in range(x)) for x in range(1, 7)]
    err = capfd.readouterr().err
    assert "Parallel(n_jobs=1)" not in err  # the inner calls' label
    assert "6/6" in final_line(err) and final_line(err).startswith("Parallel(n_jobs=2): 100%|")


def test_no_output_by_default(capfd: pytest.CaptureFixture[str]) -> None:
    Parallel(n_jobs=2)(delayed(square)(i) for i in range(5))
    assert capfd.readouterr() == ("", "")


def test_verbose_prints_joblib_style_messages(capsys: pytest.CaptureFixture[str]) -> None:
    Parallel(n_jobs=2, verbose=10)(delayed(square)(i) for i in range(10))
    err = capsys.readouterr().err
    assert "[Parallel(n_jobs=2)]: Using backend loky with 2 concurrent workers." in err
    assert "Done 10 out of 10" in err
    assert err.strip().endswith("finished")
    assert "%|" not in err  # messages only: no bar unless asked


def test_text_bar_shows_rate_and_time_left() -> None:
    bar = TextBar(10, label="P", unit="tasks", stream=io.StringIO())
    bar.n = 4
    text = bar.text(elapsed=2.0)
    assert text.startswith("P:  40%|")
    assert "4/10 [00:02<00:03, 2.00 tasks/s]" in text
    bar.total = None
    assert bar.text(elapsed=2.0) == "P: 4 tasks [00:02, 2.00 tasks/s]"
    bar.n = 12345
    assert bar.text(elapsed=1.0) == "P: 12345 tasks [00:01, 12,345 tasks/s]"


CHILD_WITHOUT_TQDM = textwrap.dedent(
    """
    import sys
    sys.modules["tqdm"] = None  # as if tqdm were not installed
    from math import sqrt
    from zoblib.parallel import Parallel, delayed

    if __name__ == "__main__":
        Parallel(n_jobs=2, progress_bar=True)(delayed(sqrt)(i) for i in range(10))
        Parallel(n_jobs=2, progress_bar=True)(delayed(sqrt)(i) for i in iter(range(7)))
    """
)


def test_text_bar_without_tqdm(tmp_path: pytest.TempPathFactory) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD_WITHOUT_TQDM], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    finals = [line for line in done.stderr.splitlines() if "100%|" in line]
    assert len(finals) == 2, done.stderr
    assert finals[0].startswith("Parallel(n_jobs=2): 100%|") and "| 10/10 [" in finals[0]
    assert "| 7/7 [" in finals[1] and finals[1].endswith(" tasks/s]")  # zoblib's format
