"""Aggregation over seeds, the Markdown table and JSON round trips."""

from __future__ import annotations

import json
import math

import pytest

from slimrec.errors import ConfigError, DataError
from slimrec.eval import ResultTable, RunResult


def table() -> ResultTable:
    t = ResultTable()
    for seed, (a, b) in enumerate([(0.10, 0.20), (0.12, 0.22), (0.14, 0.27)]):
        t.add(RunResult("SASRec", seed, {"ndcg@10": a, "hit@10": 2 * a}, dataset="d"))
        t.add(method="SLIM", seed=seed, metrics={"ndcg@10": b, "hit@10": 2 * b}, dataset="d")
    t.add(RunResult("SASRec", 0, {"ndcg@10": 0.5, "hit@10": 0.9}, protocol="sampled", dataset="d"))
    return t


def test_mean_and_sample_std():
    # By hand: SLIM ndcg@10 = 0.20, 0.22, 0.27 -> mean 0.23; deviations -0.03, -0.01, 0.04;
    # squares sum to 0.0026; / (3 - 1) = 0.0013; sqrt = 0.036056.
    groups = table().summary()
    slim = groups[("d", "full", "SLIM", "ndcg@10")]
    assert slim.mean == pytest.approx(0.23) and slim.n == 3
    assert slim.std == pytest.approx(math.sqrt(0.0013))
    sasrec = groups[("d", "full", "SASRec", "ndcg@10")]
    assert sasrec.mean == pytest.approx(0.12) and sasrec.std == pytest.approx(0.02)
    # One run: std is None (undefined with ddof=1) and the cell shows the mean alone.
    single = groups[("d", "sampled", "SASRec", "hit@10")]
    assert single.n == 1 and single.std is None and single.format() == "0.9000"
    assert table().cell("SLIM", "hit@10").mean == pytest.approx(0.46)
    assert len(groups) == 6


def test_markdown_and_improvement():
    t = table()
    assert t.improvement("SLIM", "SASRec", "ndcg@10") == pytest.approx(100 * (0.23 - 0.12) / 0.12)
    md = t.to_markdown(("ndcg@10", "hit@10"), improvement_over=("SLIM", "SASRec"))
    assert "| SASRec | 0.1200 ± 0.0200 | 0.2400 ± 0.0400 |" in md
    assert "| SLIM | **0.2300 ± 0.0361** | **0.4600 ± 0.0721** |" in md
    assert "+91.67%" in md and "n=3" in md
    sampled = t.to_markdown(("ndcg@10", "hit@20"), protocol="sampled")
    assert "| SASRec | 0.5000 | – |" in sampled and "±" not in sampled


def test_several_datasets_need_a_choice_and_duplicates_are_refused():
    t = table()
    t.add(RunResult("SASRec", 0, {"ndcg@10": 0.3}, dataset="other"))
    with pytest.raises(ConfigError, match="several datasets"):
        t.to_markdown()
    assert "0.3000" in t.to_markdown(("ndcg@10",), dataset="other")
    with pytest.raises(ValueError, match="already"):
        t.add(RunResult("SASRec", 0, {"ndcg@10": 0.3}, dataset="other"))


def test_json_round_trip(tmp_path):
    t = table()
    t.save(tmp_path / "r.json")
    back = ResultTable.load(tmp_path / "r.json")
    assert back.runs == t.runs and back.summary() == t.summary()
    assert ResultTable.from_json(json.loads(json.dumps(t.to_json()))).runs == t.runs
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary behind
    (tmp_path / "bad.json").write_text('{"rows": []}')
    with pytest.raises(DataError, match="not a results file"):
        ResultTable.load(tmp_path / "bad.json")
