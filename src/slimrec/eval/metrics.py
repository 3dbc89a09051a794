"""Ranking metrics of one target item per user: NDCG@K, Hit@K, MRR@K.

Everything follows from two counts per user: how many candidates score strictly higher
than the target (``n_greater``) and how many tie with it (``n_equal``). Ties matter: a
model that outputs constant scores must not look perfect (optimistic ranking) or
hopeless (pessimistic ranking). The default, ``expected``, is the exact expectation of
each metric when ties are broken uniformly at random: the target's rank is then uniform
on ``n_greater + 1 .. n_greater + n_equal + 1``, so the expectation is a difference of
cumulative gain tables divided by ``n_equal + 1`` -- vectorised, no sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

TiePolicy = Literal["expected", "pessimistic", "optimistic"]
METRICS = ("ndcg", "hit", "mrr")


def rank_counts(scores: Tensor, target_index: Tensor) -> tuple[Tensor, Tensor]:
    """``(n_greater, n_equal)`` of the target column of ``scores`` ``[B, C]``.

    ``n_equal`` excludes the target itself. Masked candidates (``-inf``) never tie with
    a finite target score.
    """
    target = scores.gather(1, target_index.view(-1, 1))
    n_greater = (scores > target).sum(1)
    n_equal = (scores == target).sum(1) - 1
    return n_greater, n_equal


def _gain(metric: str, ranks: Tensor) -> Tensor:
    """Per-rank gain of a metric for ranks ``1..K`` (float64 for exact tables)."""
    if metric == "hit":
        return torch.ones_like(ranks)
    if metric == "ndcg":
        return 1.0 / torch.log2(ranks + 1.0)
    return 1.0 / ranks


def metrics_from_counts(
    n_greater: Tensor,
    n_equal: Tensor,
    ks: Sequence[int] = (10, 20),
    ties: TiePolicy = "expected",
) -> dict[str, Tensor]:
    """Per-user metric values ``{"ndcg@10": [B], "hit@10": [B], "mrr@10": [B], ...}``."""
    if ties == "expected":
        lo, hi = n_greater + 1, n_greater + n_equal + 1
    elif ties == "pessimistic":
        lo = hi = n_greater + n_equal + 1
    elif ties == "optimistic":
        lo = hi = n_greater + 1
    else:
        raise ValueError(f"unknown tie policy {ties!r}")
    count = (hi - lo + 1).to(torch.float64)
    out: dict[str, Tensor] = {}
    k_max = max(ks)
    ranks = torch.arange(1, k_max + 1, dtype=torch.float64, device=n_greater.device)
    for metric in METRICS:
        # cumulative[j] = sum of gains of ranks 1..j; cumulative[0] = 0.
        cumulative = torch.cat([ranks.new_zeros(1), torch.cumsum(_gain(metric, ranks), 0)])
        for k in ks:
            top = cumulative[hi.clamp(max=k)] - cumulative[(lo - 1).clamp(max=k)]
            out[f"{metric}@{k}"] = (top / count).to(torch.float32)
    return out


def ranking_metrics(
    scores: Tensor,
    target_index: Tensor,
    ks: Sequence[int] = (10, 20),
    ties: TiePolicy = "expected",
) -> dict[str, Tensor]:
    """Metrics of the target column ``target_index`` ``[B]`` in ``scores`` ``[B, C]``."""
    n_greater, n_equal = rank_counts(scores, target_index)
    return metrics_from_counts(n_greater, n_equal, ks, ties)
