"""Progress bars: hidden off a terminal by default, one line per update in a log when asked."""

from __future__ import annotations

import io

import pytest

from slimrec.errors import ConfigError
from slimrec.progress import progress


def _written(mode: str | None, monkeypatch, **kwargs) -> str:
    if mode is None:
        monkeypatch.delenv("SLIMREC_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("SLIMREC_PROGRESS", mode)
    log = io.StringIO()  # not a terminal, as a log file
    for _ in progress(range(3), desc="work", file=log, **kwargs):
        pass
    return log.getvalue()


def test_bars_stay_out_of_a_log_unless_asked(monkeypatch):
    assert _written(None, monkeypatch) == ""
    assert _written("auto", monkeypatch) == ""
    assert _written("never", monkeypatch) == ""


def test_a_log_asked_for_gets_each_update_on_its_own_line(monkeypatch):
    assert _written("log", monkeypatch) == ""  # a loop of under a minute: silent
    text = _written("log", monkeypatch, mininterval=0, delay=0)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("work:   0%") and lines[-1].startswith("work: 100%")
    assert [line.split("|")[2].split()[0] for line in lines[:4]] == ["0/3", "1/3", "2/3", "3/3"]


def test_a_callers_own_switch_hides_a_bar_even_in_a_log_and_shows_it_off_a_terminal(
    monkeypatch,
):
    assert _written("log", monkeypatch, shown=False) == ""
    assert "work: 100%" in _written("auto", monkeypatch, shown=True)  # as the teacher's bar
    assert _written("never", monkeypatch, shown=True) == ""


def test_an_unknown_mode_is_one_line_before_any_work(monkeypatch, capsys):
    from slimrec.cli import main

    monkeypatch.setenv("SLIMREC_PROGRESS", "loud")
    with pytest.raises(ConfigError, match=r"\$SLIMREC_PROGRESS: unknown progress mode 'loud'"):
        _written("loud", monkeypatch)
    assert main(["methods"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: $SLIMREC_PROGRESS") and err.count("\n") == 1


def test_a_bar_inside_another_writes_no_cursor_moves_into_the_log(monkeypatch):
    monkeypatch.setenv("SLIMREC_PROGRESS", "log")
    log = io.StringIO()
    for _ in progress(range(2), desc="outer", file=log, mininterval=0, delay=0):
        for _ in progress(range(2), desc="inner", file=log, mininterval=0, delay=0, leave=False):
            pass
    assert "\x1b[" not in log.getvalue() and "inner: 100%" in log.getvalue()
