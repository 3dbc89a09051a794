"""Stopwatch: a stage's seconds add up over its attempts and survive a killed one."""

from __future__ import annotations

import json
import time

import pytest

from slimrec.pipeline import stopwatch
from slimrec.pipeline.stage import MANIFEST, StageRunner
from slimrec.pipeline.stopwatch import ELAPSED, Stopwatch


def test_a_resumed_stage_counts_the_seconds_of_its_interrupted_attempt(tmp_path, monkeypatch):
    now = [0.0]  # a clock that moves only when the work says so
    monkeypatch.setattr(stopwatch.time, "perf_counter", lambda: now[0])

    def interrupted(folder):
        now[0] += 1000.0
        raise KeyboardInterrupt

    def resumed(folder):
        now[0] += 10.0
        return {}

    with pytest.raises(KeyboardInterrupt):
        StageRunner(tmp_path, echo=lambda _: None).run("fit", {}, interrupted)
    first = json.loads(next(tmp_path.glob(f"stages/*/{ELAPSED}")).read_text())
    assert first == {"seconds": 1000.0, "attempts": 1}

    rec = StageRunner(tmp_path, echo=lambda _: None).run("fit", {}, resumed)
    manifest = json.loads((tmp_path / rec.folder / MANIFEST).read_text())
    assert manifest["seconds"] == rec.compute_seconds == 1010.0
    assert manifest["attempts"] == 2


def test_a_running_attempt_keeps_its_seconds_so_far_in_the_folder(tmp_path):
    """What an attempt killed outright (no exit handler runs) leaves for the next one."""
    with Stopwatch(tmp_path, every=0.01):
        deadline = time.monotonic() + 120
        while not (tmp_path / ELAPSED).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        saved = json.loads((tmp_path / ELAPSED).read_text())
    assert saved["attempts"] == 1 and saved["seconds"] >= 0
    assert Stopwatch(tmp_path).attempts == 2
