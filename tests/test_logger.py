"""``Logger`` and ``PrintTime``: joblib's logging helpers, with real log files."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
import pytest

import zoblib
from zoblib.logger import LOG_FILE_NAME, Logger, PrintTime, format_time


def test_they_are_joblibs_public_names() -> None:
    assert zoblib.Logger is Logger and zoblib.PrintTime is PrintTime
    assert {"Logger", "PrintTime"} <= set(zoblib.__all__)


class Named(Logger):
    def __repr__(self) -> str:
        return "Named()"


@pytest.mark.parametrize("level", ["warn", "info", "debug"])
def test_logger_sends_prefixed_messages_to_its_logger(level: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    getattr(Named(name="zoblib.test"), level)("hello")
    (record,) = [r for r in caplog.records if r.name == "zoblib.test"]
    assert record.getMessage() == "[Named()]: hello"
    assert record.levelname == {"warn": "WARNING", "info": "INFO", "debug": "DEBUG"}[level]


def test_logger_defaults(caplog: pytest.LogCaptureFixture) -> None:
    logger = Logger()
    assert logger.depth == 3
    with caplog.at_level(logging.WARNING):
        logger.warn("careful")
    assert [r.name for r in caplog.records] == ["zoblib"]


def test_format_respects_depth_and_shortens_arrays() -> None:
    nested = {"a": {"b": {"c": {"d": 1}}}}
    assert Logger(depth=2).format(nested) == "{'a': {'b': {...}}}"
    assert Logger(depth=10).format(nested) == repr(nested)
    text = Logger().format(np.arange(1000.0))
    assert "..." in text and len(text) < 100
    # The caller's numpy print options are left as they were.
    assert np.get_printoptions()["threshold"] == 1000


def test_print_time_prints_elapsed_times(capsys: pytest.CaptureFixture[str]) -> None:
    print_time = PrintTime()
    time.sleep(0.15)
    print_time("step")
    print_time("again")
    print_time("all", total=True)
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"step: 0\.[1-9]s, 0\.0min", lines[0]), lines
    assert re.fullmatch(r"again: 0\.[0-9]s, 0\.0min", lines[1]), lines
    assert re.fullmatch(r"all: 0\.[1-9]\ds, 0\.0 min", lines[2]), lines
    assert format_time(90) == "90.0s, 1.5min"


def test_print_time_appends_to_its_log_and_rotates_old_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logfile = tmp_path / "logs" / "run.log"  # the folder is made
    for run in range(12):
        PrintTime(logfile=logfile)(f"run {run}")
    capsys.readouterr()
    assert logfile.read_text().splitlines()[-1].startswith("run 11: ")
    assert logfile.read_text().startswith("\nLogging zoblib python script\n\n---")
    # The nine latest earlier logs are kept, newest first.
    for number in range(1, 10):
        kept = Path(f"{logfile}.{number}").read_text().splitlines()[-1]
        assert kept.startswith(f"run {11 - number}: "), (number, kept)
    assert not Path(f"{logfile}.10").exists()


def test_print_time_logdir_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    PrintTime(logdir=tmp_path)("in a folder")
    assert "in a folder: " in (tmp_path / LOG_FILE_NAME).read_text()
    with pytest.raises(ValueError, match="Cannot specify both logfile and logdir"):
        PrintTime(logfile=tmp_path / "a.log", logdir=tmp_path)


def test_print_time_never_fails_the_computation_on_a_log_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    print_time = PrintTime(logfile=not_a_folder / "run.log")  # cannot be made, even as root
    print_time("still printed")
    assert "still printed: " in capsys.readouterr().err
    assert not_a_folder.read_text() == ""


def test_print_time_with_a_relative_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # joblib fails here (it makes the folder "" of a bare file name); zoblib writes it.
    monkeypatch.chdir(tmp_path)
    PrintTime(logfile="here.log")("relative")
    assert "relative: " in (tmp_path / "here.log").read_text()
