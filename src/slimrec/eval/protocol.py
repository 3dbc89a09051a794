"""Evaluation protocols: full ranking (default) and the sampled 1 + 100 protocol.

Full ranking scores the target against the whole catalog, with the items already in the
user's history masked (the target itself never is). It is the default because sampled
metrics can rank models inconsistently with the full ones (Krichene & Rendle, "On
Sampled Metrics for Item Recommendation", KDD 2020). The sampled protocol of the SLIM
paper (Wang et al., WWW 2024) ranks the target among 100 negatives drawn from items the
user has not interacted with, uniformly or by popularity. Both protocols produce
``(scores, target column)`` and go through the same metric code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor
from tqdm.auto import tqdm

from slimrec.errors import ConfigError
from slimrec.eval.metrics import ranking_metrics

# score_fn(histories [B, L] right-padded, candidates [B, C] or None) ->
#   [B, C] candidate scores, or [B, n_items + 1] catalog scores when candidates is None.
ScoreFn = Callable[[Tensor, Tensor | None], Tensor]


class EvalConfig(BaseModel):
    """How to evaluate next-item predictions."""

    model_config = ConfigDict(extra="forbid")

    protocol: Literal["full", "sampled"] = Field(
        "full", description="full ranking or 1 + n sampled."
    )
    mask_history: bool = Field(True, description="Full ranking: mask items already in the history.")
    n_negatives: int = Field(100, ge=1, description="Sampled: negatives per target.")
    negative_sampling: Literal["uniform", "popularity"] = Field(
        "uniform", description="Sampled: negatives uniform, or proportional to popularity + 1."
    )
    ks: tuple[int, ...] = Field((10, 20), description="Cut-offs K of NDCG@K, Hit@K, MRR@K.")
    ties: Literal["expected", "pessimistic", "optimistic"] = Field(
        "expected", description="Tied scores: exact expectation under random tie-breaking."
    )
    seed: int = Field(0, description="Seed of the sampled negatives.")
    batch_size: int = Field(256, ge=1, description="Users scored per batch.")


def pad_right(seqs: Sequence[np.ndarray], max_len: int | None = None) -> Tensor:
    """Right-padded LongTensor ``[B, L]``, keeping the most recent ``max_len`` items."""
    cut = [s[-max_len:] if max_len else s for s in seqs]
    width = max((len(s) for s in cut), default=0) or 1
    out = np.zeros((len(cut), width), dtype=np.int64)
    for i, s in enumerate(cut):
        out[i, : len(s)] = s
    return torch.from_numpy(out)


def sample_negatives(
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    n: int,
    rng: np.random.Generator,
    popularity: np.ndarray | None = None,
) -> np.ndarray:
    """``[U, n]`` distinct items per user, none in the user's history or equal to the target.

    Vectorised rejection sampling: draw a surplus for all users at once, drop draws that
    hit the user's items (one sorted-key lookup) or repeat within the row, keep the first
    ``n``; rows left short are redrawn with a larger surplus.
    """
    n_users = len(histories)
    lengths = np.array([len(h) for h in histories])
    items = np.concatenate(histories).astype(np.int64) if n_users else np.empty(0, np.int64)
    users = np.arange(n_users)
    seen_keys = np.unique(
        np.concatenate(
            [np.repeat(users, lengths) * (n_items + 1) + items, users * (n_items + 1) + targets]
        )
    )
    n_seen = np.bincount(seen_keys // (n_items + 1), minlength=n_users)
    if n_users and (n_items - n_seen).min() < n:
        user = int(np.argmin(n_items - n_seen))
        raise ConfigError(
            f"user {user} has interacted with {n_seen[user]} of {n_items} items, leaving fewer "
            f"than {n} negatives",
            fix="lower n_negatives or use the full protocol",
        )
    p = None
    if popularity is not None:
        weights = popularity[1 : n_items + 1].astype(np.float64) + 1.0
        p = weights / weights.sum()
    out = np.zeros((n_users, n), dtype=np.int64)
    todo = np.arange(n_users)
    surplus = 2
    while len(todo):
        m = n * surplus + 16
        draws = rng.choice(n_items, size=(len(todo), m), p=p) + 1
        keys = todo[:, None] * (n_items + 1) + draws
        valid = ~_sorted_contains(seen_keys, keys)
        # First occurrence of each key in row-major (= draw) order; later repeats invalid.
        flat = keys.ravel()
        _, first = np.unique(flat, return_index=True)
        is_first = np.zeros(flat.shape, dtype=bool)
        is_first[first] = True
        valid &= is_first.reshape(keys.shape)
        rank = np.cumsum(valid, axis=1)
        done = rank[:, -1] >= n
        take = valid & (rank <= n) & done[:, None]
        out[todo[done]] = draws[take].reshape(-1, n)
        todo = todo[~done]
        surplus *= 2
    return out


def _sorted_contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_keys, keys).clip(max=len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


def evaluate(
    score_fn: ScoreFn,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    config: EvalConfig | None = None,
    item_popularity: np.ndarray | None = None,
    max_history_len: int | None = None,
) -> dict[str, float]:
    """Mean metrics over users (plus ``n_users``) under ``config``'s protocol.

    ``histories`` are what the model sees (cut to ``max_history_len`` for it); masking in
    full ranking uses the whole history.
    """
    config = config or EvalConfig()
    targets = np.asarray(targets, dtype=np.int64)
    negatives = None
    if config.protocol == "sampled":
        rng = np.random.default_rng(config.seed)
        pop = item_popularity if config.negative_sampling == "popularity" else None
        if config.negative_sampling == "popularity" and pop is None:
            raise ConfigError("popularity sampling needs item_popularity", fix="pass it")
        negatives = sample_negatives(histories, targets, n_items, config.n_negatives, rng, pop)

    per_user: dict[str, list[Tensor]] = {}
    starts = range(0, len(histories), config.batch_size)
    for start in tqdm(starts, desc=f"eval ({config.protocol})", leave=False, disable=None):
        stop = start + config.batch_size
        seqs = pad_right(histories[start:stop], max_history_len)
        target = torch.from_numpy(targets[start:stop])
        if negatives is None:
            scores = score_fn(seqs, None).float().clone()
            target_score = scores.gather(1, target[:, None])
            if config.mask_history:
                full = pad_right(histories[start:stop]) if max_history_len else seqs
                scores.scatter_(1, full, float("-inf"))
            scores[:, 0] = float("-inf")
            scores.scatter_(1, target[:, None], target_score)
            index = target
        else:
            candidates = torch.cat([target[:, None], torch.from_numpy(negatives[start:stop])], 1)
            scores = score_fn(seqs, candidates).float()
            index = torch.zeros_like(target)
        for name, values in ranking_metrics(scores, index, config.ks, config.ties).items():
            per_user.setdefault(name, []).append(values)
    result = {k: float(torch.cat(v).mean()) for k, v in per_user.items()}
    result["n_users"] = float(len(histories))
    return result
