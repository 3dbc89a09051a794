"""Aggregation over seeds and the Markdown table."""

from __future__ import annotations

import pytest

from slimrec.eval import ResultTable, RunResult


def table() -> ResultTable:
    t = ResultTable()
    for seed, (a, b) in enumerate([(0.10, 0.20), (0.12, 0.22), (0.14, 0.27)]):
        t.add(RunResult("SASRec", seed, {"ndcg@10": a, "hit@10": 2 * a}, dataset="d"))
        t.add(RunResult("SLIM", seed, {"ndcg@10": b, "hit@10": 2 * b}, dataset="d"))
    t.add(RunResult("SASRec", 0, {"ndcg@10": 0.5, "hit@10": 0.9}, protocol="sampled", dataset="d"))
    return t


def test_mean_and_sample_std():
    s = table().summary("SASRec", "ndcg@10")
    assert s.mean == pytest.approx(0.12) and s.std == pytest.approx(0.02) and s.n == 3
    single = table().summary("SASRec", "ndcg@10", protocol="sampled")
    assert single.std is None and single.format() == "0.5000"


def test_markdown_and_improvement():
    t = table()
    assert t.improvement("SLIM", "SASRec", "ndcg@10") == pytest.approx(100 * (0.23 - 0.12) / 0.12)
    md = t.to_markdown(("ndcg@10", "hit@10"), improvement_over=("SLIM", "SASRec"))
    assert "| SASRec | 0.1200 ± 0.0200 | 0.2400 ± 0.0400 |" in md
    assert "**0.2300 ± 0.0361**" in md
    assert "+91.67%" in md and "(n=3)" in md


def test_json_round_trip(tmp_path):
    t = table()
    t.save(tmp_path / "r.json")
    back = ResultTable.load(tmp_path / "r.json")
    assert back.runs == t.runs
