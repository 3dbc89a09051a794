"""Evaluation: metrics with exact tie handling, full and sampled protocols, results tables."""

from slimrec.eval.metrics import metrics_from_counts, rank_counts, ranking_metrics
from slimrec.eval.protocol import EvalConfig, ScoreFn, evaluate, pad_right, sample_negatives
from slimrec.eval.results import ResultTable, RunResult, Summary

__all__ = [
    "EvalConfig",
    "ResultTable",
    "RunResult",
    "ScoreFn",
    "Summary",
    "evaluate",
    "metrics_from_counts",
    "pad_right",
    "rank_counts",
    "ranking_metrics",
    "sample_negatives",
]
