"""verbose messages and the progress bar."""

from __future__ import annotations

import io

import pytest
from parallel_helpers import square

from zoblib.parallel import Parallel, delayed, parallel_config
from zoblib.parallel.progress import Progress


def test_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert Parallel(n_jobs=2, progress_bar=True)(delayed(square)(i) for i in range(10)) == [
        i * i for i in range(10)
    ]
    captured = capsys.readouterr()
    assert captured.out == ""
    last = captured.err.strip().splitlines()[-1]
    assert "100%|" in last
    assert "10/10" in last
    assert "tasks/s" in last


def test_progress_bar_can_be_switched_on_for_a_block(capsys: pytest.CaptureFixture[str]) -> None:
    with parallel_config(progress_bar=True):
        Parallel(n_jobs=2)(delayed(square)(i) for i in range(4))
    assert "4/4" in capsys.readouterr().err


def test_progress_bar_without_a_known_total(capsys: pytest.CaptureFixture[str]) -> None:
    Parallel(n_jobs=1, progress_bar=True)(delayed(square)(i) for i in range(5))
    assert "5/5" in capsys.readouterr().err  # the total is known once the input ends


def test_no_output_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    Parallel(n_jobs=2)(delayed(square)(i) for i in range(5))
    assert capsys.readouterr() == ("", "")


def test_verbose_prints_joblib_style_messages(capsys: pytest.CaptureFixture[str]) -> None:
    Parallel(n_jobs=2, verbose=10)(delayed(square)(i) for i in range(10))
    err = capsys.readouterr().err
    assert "[Parallel(n_jobs=2)]: Using backend loky with 2 concurrent workers." in err
    assert "Done 10 out of 10" in err
    assert err.strip().endswith("finished")


def test_bar_text_shows_rate_and_time_left() -> None:
    progress = Progress(verbose=0, progress_bar=True, label="P", total=10, stream=io.StringIO())
    progress.done = 4
    text = progress.bar_text(elapsed=2.0)
    assert text.startswith("P:  40%|")
    assert "4/10 [00:02<00:03, 2.00 tasks/s]" in text
    progress.total = None
    assert progress.bar_text(elapsed=2.0) == "P: 4 tasks [00:02, 2.00 tasks/s]"
    progress.done = 12345
    assert progress.bar_text(elapsed=1.0) == "P: 12345 tasks [00:01, 12,345 tasks/s]"
