"""Evaluation protocols: full ranking (default) and the sampled 1 + 100 protocol.

Full ranking scores the target against the whole catalog, with the items already in the
user's history masked (the target itself never is). It is the default because sampled
metrics can rank models inconsistently with the full ones (Krichene & Rendle, "On
Sampled Metrics for Item Recommendation", KDD 2020). The sampled protocol of the SLIM
paper (Wang et al., WWW 2024) ranks the target among 100 negatives drawn from the items
the user has not interacted with, uniformly or in proportion to training popularity.
Both protocols produce ``(scores, target column)`` and go through the same metric code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import Tensor

from slimrec.errors import ConfigError
from slimrec.eval.metrics import check_ks, ranking_metrics
from slimrec.eval.sampling import sample_negatives
from slimrec.progress import progress

# score_fn(histories [B, L] right-padded with 0, candidates [B, C] or None) ->
#   [B, C] candidate scores, or [B, n_items + 1] catalog scores when candidates is None.
ScoreFn = Callable[[Tensor, Tensor | None], Tensor]
# The same with the batch's user indices [B] as a third argument (models that know users).
UserScoreFn = Callable[[Tensor, Tensor | None, Tensor], Tensor]


class EvalConfig(BaseModel):
    """How to evaluate next-item predictions."""

    model_config = ConfigDict(extra="forbid")

    protocol: Literal["full", "sampled"] = Field(
        "full", description="full: rank the whole catalog; sampled: target + n_negatives."
    )
    mask_history: bool = Field(
        True, description="Full ranking: mask the user's history items (never the target)."
    )
    n_negatives: int = Field(100, ge=1, description="Sampled: negatives per target.")
    negative_sampling: Literal["uniform", "popularity"] = Field(
        "uniform", description="Sampled: negatives uniform, or proportional to training counts."
    )
    ks: tuple[int, ...] = Field((10, 20), description="Cut-offs K of NDCG@K, Hit@K, MRR@K.")
    ties: Literal["expected", "pessimistic", "optimistic"] = Field(
        "expected", description="Tied scores: exact expectation under random tie-breaking."
    )
    seed: int = Field(0, description="Seed of the sampled negatives.")
    batch_size: int = Field(256, ge=1, description="Users scored per batch.")

    @field_validator("ks")
    @classmethod
    def _positive_ks(cls, ks: tuple[int, ...]) -> tuple[int, ...]:
        return check_ks(ks)


def pad_right(seqs: Sequence[np.ndarray], max_len: int | None = None) -> Tensor:
    """Right-padded LongTensor ``[B, L]`` (0 = padding), keeping the most recent ``max_len``.

    ``L`` is the longest (cut) sequence, at least 1 so that empty histories still work.
    """
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be positive, got {max_len}")
    cut = [np.asarray(s, dtype=np.int64)[-max_len:] if max_len else s for s in seqs]
    lengths = np.fromiter((len(s) for s in cut), dtype=np.int64, count=len(cut))
    out = np.zeros((len(cut), max(int(lengths.max(initial=0)), 1)), dtype=np.int64)
    if len(cut) and lengths.sum():
        out[np.arange(out.shape[1]) < lengths[:, None]] = np.concatenate(cut)
    return torch.from_numpy(out)


def _call(score_fn, seqs: Tensor, candidates: Tensor | None, users: Tensor | None) -> Tensor:
    """``score_fn(seqs, candidates)``, with ``users`` as a third argument when given."""
    return score_fn(seqs, candidates) if users is None else score_fn(seqs, candidates, users)


def _check_scores(scores: Tensor, shape: tuple[int, int], what: str) -> Tensor:
    if not isinstance(scores, Tensor) or tuple(scores.shape) != shape:
        got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"score_fn returned {got} for {what}; expected {shape}")
    # Keep float64 as is (downcasting could create ties); half precision goes to float32.
    return scores.to(torch.promote_types(scores.dtype, torch.float32))


def evaluate(
    score_fn: ScoreFn,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    config: EvalConfig | None = None,
    item_popularity: np.ndarray | None = None,
    max_history_len: int | None = None,
    users: Sequence[int] | np.ndarray | None = None,
) -> dict[str, float]:
    """Mean metrics over users (plus ``n_users``) under ``config``'s protocol.

    The arguments are those of :func:`per_user_metrics`; one mean over all users at the
    end, so the result is identical for every batch size.
    """
    per_user = per_user_metrics(
        score_fn, histories, targets, n_items, config, item_popularity, max_history_len, users
    )
    return summarize(per_user, (config or EvalConfig()).ks, len(histories))


def summarize(per_user: dict[str, np.ndarray], ks: Sequence[int], n_users: int) -> dict[str, float]:
    """Means of :func:`per_user_metrics` (NaN without users), plus ``n_users``."""
    if n_users:
        # torch's mean, as before per-user values were kept: the same digits as ever.
        result = {name: float(torch.from_numpy(v).mean()) for name, v in per_user.items()}
    else:
        result = {f"{m}@{k}": float("nan") for m in ("ndcg", "hit", "mrr") for k in ks}
    result["n_users"] = float(n_users)
    return result


def per_user_metrics(
    score_fn: ScoreFn,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    config: EvalConfig | None = None,
    item_popularity: np.ndarray | None = None,
    max_history_len: int | None = None,
    users: Sequence[int] | np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every metric for every user (``{"ndcg@10": [n_users], ...}``, in history order).

    Kept per user so that two models scored on the same users can be compared pairwise
    (:func:`slimrec.eval.bootstrap.paired_bootstrap`). ``histories`` are what the model
    sees (cut to the ``max_history_len`` most recent items for it); masking in full
    ranking and the exclusion of negatives use the whole history.
    ``item_popularity[i]`` is item ``i``'s training count (popularity sampling).
    ``users`` (the user index of each history): when given, ``score_fn`` is a
    :data:`UserScoreFn` and also receives the batch's users as a LongTensor ``[B]``.
    """
    config = config or EvalConfig()
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    if len(targets) != len(histories):
        raise ValueError(f"{len(histories)} histories but {len(targets)} targets")
    user_ids = None if users is None else np.asarray(users, dtype=np.int64).reshape(-1)
    if user_ids is not None and len(user_ids) != len(histories):
        raise ValueError(f"{len(histories)} histories but {len(user_ids)} users")
    if len(targets) and (targets.min() < 1 or targets.max() > n_items):
        raise ConfigError(
            f"target item ids must lie in 1..{n_items}, got {targets.min()}..{targets.max()}",
            fix="pass n_items of the dataset the targets come from",
        )
    negatives = None
    if config.protocol == "sampled":
        pop = None
        if config.negative_sampling == "popularity":
            if item_popularity is None:
                raise ConfigError(
                    "popularity sampling needs item_popularity",
                    fix="pass the training interaction count per item id",
                )
            pop = item_popularity
        rng = np.random.default_rng(config.seed)
        negatives = sample_negatives(histories, targets, n_items, config.n_negatives, rng, pop)

    per_user: dict[str, list[Tensor]] = {}
    starts = range(0, len(histories), config.batch_size)
    with torch.inference_mode():
        for start in progress(starts, desc=f"eval ({config.protocol})", leave=False):
            stop = start + config.batch_size
            seqs = pad_right(histories[start:stop], max_history_len)
            target = torch.from_numpy(targets[start:stop])
            n = len(target)
            batch_users = None if user_ids is None else torch.from_numpy(user_ids[start:stop])
            if negatives is None:
                scores = _check_scores(
                    _call(score_fn, seqs, None, batch_users), (n, n_items + 1), "full ranking"
                )
                target = target.to(scores.device)
                target_score = scores.gather(1, target[:, None])
                scores = scores.clone()  # never write into the scorer's tensors
                if config.mask_history:
                    full = pad_right(histories[start:stop]) if max_history_len else seqs
                    scores.scatter_(1, full.to(scores.device), float("-inf"))
                scores[:, 0] = float("-inf")
                scores.scatter_(1, target[:, None], target_score)
                index = target
            else:
                negs = torch.from_numpy(negatives[start:stop])
                candidates = torch.cat([target[:, None], negs], 1)
                shape = tuple(candidates.shape)
                scores = _check_scores(
                    _call(score_fn, seqs, candidates, batch_users), shape, "the candidates"
                )
                index = torch.zeros(n, dtype=torch.long, device=scores.device)
            for name, values in ranking_metrics(scores, index, config.ks, config.ties).items():
                per_user.setdefault(name, []).append(values.cpu())
    return {name: torch.cat(v).numpy() for name, v in per_user.items()}
