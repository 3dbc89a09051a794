"""Evaluation: metrics with exact tie handling, full and sampled protocols, results tables.

Full ranking is the default protocol (Krichene & Rendle, KDD 2020); the SLIM paper's
1 + 100 sampled protocol is ``EvalConfig(protocol="sampled")``.
"""

from slimrec.eval.bootstrap import paired_bootstrap
from slimrec.eval.metrics import (
    TIE_POLICIES,
    TiePolicy,
    metrics_from_counts,
    rank_counts,
    ranking_metrics,
)
from slimrec.eval.protocol import (
    EvalConfig,
    ScoreFn,
    UserScoreFn,
    evaluate,
    pad_right,
    per_user_metrics,
    summarize,
)
from slimrec.eval.results import ResultTable, RunResult, Summary
from slimrec.eval.sampling import sample_negatives

__all__ = [
    "TIE_POLICIES",
    "EvalConfig",
    "ResultTable",
    "RunResult",
    "ScoreFn",
    "Summary",
    "TiePolicy",
    "UserScoreFn",
    "evaluate",
    "metrics_from_counts",
    "pad_right",
    "paired_bootstrap",
    "per_user_metrics",
    "rank_counts",
    "ranking_metrics",
    "sample_negatives",
    "summarize",
]
