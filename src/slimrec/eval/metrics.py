"""Ranking metrics of one target item per user: NDCG@K, Hit@K, MRR@K.

Everything follows from two counts per user: how many candidates score strictly higher
than the target (``n_greater``) and how many tie with it (``n_equal``, the target itself
excluded). Ties matter: a model that outputs constant scores must not look perfect
(optimistic ranking) or hopeless (pessimistic ranking). The default, ``expected``, is the
exact expectation of each metric when ties are broken uniformly at random: the target's
rank is then uniform on ``n_greater + 1 .. n_greater + n_equal + 1``, so the expectation
is a difference of cumulative gain tables (ranks ``1..K`` only, the rest gain nothing)
divided by ``n_equal + 1`` -- vectorised and exact, no sampling.

Masked candidates carry ``-inf``: they are never above a finite target nor tied with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

TiePolicy = Literal["expected", "pessimistic", "optimistic"]
TIE_POLICIES: tuple[str, ...] = ("expected", "pessimistic", "optimistic")
METRICS = ("ndcg", "hit", "mrr")


def rank_counts(
    scores: Tensor, target_index: Tensor | None = None, target_scores: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``(n_greater, n_equal)`` of the target in ``scores`` ``[B, C]``, both ``[B]`` long.

    Give the target's column ``target_index`` ``[B]`` (it is then excluded from
    ``n_equal``) or its score ``target_scores`` ``[B]`` (the target is then not a column of
    ``scores``). A NaN score is a bug in the scorer and raises ``ValueError``.
    """
    if (target_index is None) == (target_scores is None):
        raise ValueError("give exactly one of target_index and target_scores")
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; the scorer is broken (diverged model?)")
    if target_index is not None:
        target = scores.gather(1, target_index.to(scores.device).view(-1, 1))
        self_tie = 1
    else:
        target = target_scores.to(scores.device, scores.dtype).view(-1, 1)  # type: ignore[union-attr]
        if torch.isnan(target).any():
            raise ValueError("target_scores contain NaN; the scorer is broken (diverged model?)")
        self_tie = 0
    n_greater = (scores > target).sum(1)
    n_equal = (scores == target).sum(1) - self_tie
    return n_greater, n_equal


def _gain(metric: str, ranks: Tensor) -> Tensor:
    """Per-rank gain of a metric for ranks ``1..K`` (float64 for exact tables)."""
    if metric == "hit":
        return torch.ones_like(ranks)
    if metric == "ndcg":
        return 1.0 / torch.log2(ranks + 1.0)
    return 1.0 / ranks


def check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """``ks`` as a tuple of positive ints; ``ValueError`` otherwise."""
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or int(k) != k or k < 1 for k in ks):
        raise ValueError(f"cut-offs K must be positive integers, got {ks!r}")
    return tuple(int(k) for k in ks)


def metrics_from_counts(
    n_greater: Tensor,
    n_equal: Tensor,
    ks: Sequence[int] = (10, 20),
    ties: TiePolicy = "expected",
) -> dict[str, Tensor]:
    """Per-user metric values ``{"ndcg@10": [B], "hit@10": [B], "mrr@10": [B], ...}``.

    Values are float64 (exact tables; average them yourself, e.g. ``.mean()``).
    """
    ks = check_ks(ks)
    if ties == "expected":
        lo, hi = n_greater + 1, n_greater + n_equal + 1
    elif ties == "pessimistic":
        lo = hi = n_greater + n_equal + 1
    elif ties == "optimistic":
        lo = hi = n_greater + 1
    else:
        raise ValueError(f"unknown tie policy {ties!r}; use one of {TIE_POLICIES}")
    count = (hi - lo + 1).to(torch.float64)
    ranks = torch.arange(1, max(ks) + 1, dtype=torch.float64, device=n_greater.device)
    out: dict[str, Tensor] = {}
    for metric in METRICS:
        # cumulative[j] = sum of the gains of ranks 1..j; cumulative[0] = 0.
        cumulative = torch.cat([ranks.new_zeros(1), torch.cumsum(_gain(metric, ranks), 0)])
        for k in ks:
            top = cumulative[hi.clamp(max=k)] - cumulative[(lo - 1).clamp(max=k)]
            out[f"{metric}@{k}"] = top / count
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
