"""Does a recommender use the order of a history? The shuffle test, for any model.

Kim et al., "Lost in Sequence: Do Large Language Models Understand Sequential
Recommendation?" (KDD 2025), Sec. 2.3: LLM-based recommenders barely change when the test
histories are shuffled, while SASRec drops sharply; the similarity of the user vectors of
the original and shuffled histories tells the same story. This module runs that test on
any scorer: the same evaluation (:func:`~slimrec.eval.protocol.per_user_metrics`) on the
original histories and on perturbed copies, and the cosine between the user vectors of
the two when the caller can give them.

Perturbations act only inside the window the model sees (its last ``window`` items):
cutting after shuffling would change *which* items it sees, not just their order. Models
reading windows of different lengths are compared on the same length with
``OrderConfig.window`` (the control for "it reacts less because it reads less").
``shuffle`` permutes the window, ``reverse`` reverses it, ``shuffle-keep-last`` permutes
all but the most recent item (separating "uses the order" from "uses the last item").
The permutation of user ``u`` in repeat ``r`` comes from ``default_rng([seed, r, u])``, so
every model sees exactly the same perturbed histories; full-ranking masks and sampled
negatives depend on the history as a set, so they are the same too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from slimrec.eval.protocol import EvalConfig, ScoreFn, pad_right, per_user_metrics

Perturbation = Literal["shuffle", "reverse", "shuffle-keep-last"]
# user_vectors(histories [B, L] right-padded, users [B]) -> [B, d]: the vectors it scores.
UserVectorFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class OrderConfig(BaseModel):
    """Which perturbation, how often, of which split."""

    model_config = ConfigDict(extra="forbid")

    perturbation: Perturbation = Field(
        "shuffle", description="shuffle | reverse | shuffle-keep-last"
    )
    repeats: int = Field(3, ge=1, description="Perturbations per user, averaged (reverse: 1).")
    seed: int = Field(0, description="Seed of the permutations (identical for every model).")
    split: Literal["valid", "test"] = Field("test", description="Which histories are perturbed.")
    window: int | None = Field(
        None,
        ge=2,
        description="Every model reads only its last N items (at most its own window), and "
        "those are perturbed: a model that reads 50 items and one that reads 10, compared "
        "on the same 10; none: each model's whole window.",
    )

    def window_of(self, visible: int) -> int:
        """The items perturbed for a model that reads the last ``visible`` items."""
        return visible if self.window is None else min(visible, self.window)

    def name(self) -> str:
        """The file stem of its tables: ``order-shuffle``, ``order-shuffle-window10``."""
        return f"order-{self.perturbation}" + (f"-window{self.window}" if self.window else "")


def perturb(
    histories: Sequence[np.ndarray],
    window: int,
    kind: Perturbation,
    *,
    seed: int = 0,
    repeat: int = 0,
    users: Sequence[int] | np.ndarray | None = None,
) -> list[np.ndarray]:
    """Copies of ``histories`` with the last ``window`` items of each perturbed.

    ``users`` (default ``0..n-1``) seed each history's permutation with
    ``default_rng([seed, repeat, user])``. Items before the window stay as they are.
    """
    ids = np.arange(len(histories)) if users is None else np.asarray(users, dtype=np.int64)
    out = []
    for history, user in zip(histories, ids, strict=True):
        history = np.asarray(history)
        cut = max(len(history) - window, 0)
        head, tail = history[:cut], history[cut:].copy()
        if kind == "reverse":
            tail = tail[::-1]
        else:
            rng = np.random.default_rng([seed, repeat, int(user)])
            movable = len(tail) - (1 if kind == "shuffle-keep-last" else 0)
            if movable > 1:
                tail[:movable] = tail[:movable][rng.permutation(movable)]
        out.append(np.concatenate([head, tail]))
    return out


def order_sensitivity(
    score_fn: ScoreFn,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    eval_config: EvalConfig,
    order_config: OrderConfig,
    *,
    window: int,
    users: Sequence[int] | np.ndarray | None = None,
    user_vectors: UserVectorFn | None = None,
    item_popularity: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics on the original and on perturbed histories, and how far the user vectors move.

    ``score_fn`` as for :func:`per_user_metrics` (with ``users``: a user-aware scorer),
    ``window`` the number of most recent items the model reads. Returns
    ``{"original": {metric: mean}, "perturbed": {metric: [mean, std over repeats]},
    "change_pct": {metric: %}, "cosine": mean cos(u, u') or None, "repeats", "window",
    "perturbation", "n_users"}``.
    """
    repeats = 1 if order_config.perturbation == "reverse" else order_config.repeats
    ids = np.arange(len(histories)) if users is None else np.asarray(users, dtype=np.int64)

    def metrics(hists: Sequence[np.ndarray]) -> dict[str, float]:
        values = per_user_metrics(
            score_fn,
            hists,
            targets,
            n_items,
            eval_config,
            item_popularity=item_popularity,
            max_history_len=window,
            users=None if users is None else ids,
        )
        return {name: float(np.mean(v)) if len(v) else float("nan") for name, v in values.items()}

    original = metrics(histories)
    runs, cosines = [], []
    # The original vectors once, not once per repeat (an LLM user vector is a forward pass).
    before = (
        None
        if user_vectors is None
        else _vectors(user_vectors, histories, ids, window, eval_config)
    )
    for repeat in range(repeats):
        shuffled = perturb(
            histories, window, order_config.perturbation,
            seed=order_config.seed, repeat=repeat, users=ids,
        )  # fmt: skip
        runs.append(metrics(shuffled))
        if user_vectors is not None and before is not None:
            after = _vectors(user_vectors, shuffled, ids, window, eval_config)
            cosines.append(float(torch.nn.functional.cosine_similarity(before, after).mean()))
    perturbed = {m: _mean_std([r[m] for r in runs]) for m in original}
    change = {
        m: (100.0 * (perturbed[m][0] - v) / v if v else float("nan")) for m, v in original.items()
    }
    return {
        "perturbation": order_config.perturbation,
        "repeats": repeats,
        "window": window,
        "n_users": len(histories),
        "original": original,
        "perturbed": perturbed,
        "change_pct": change,
        "cosine": float(np.mean(cosines)) if cosines else None,
    }


def _mean_std(values: list[float]) -> list[float]:
    """[mean, std]; repeats that agree give exactly their value (no rounding from the sum),
    so a model that ignores the order shows a change of exactly 0."""
    if all(v == values[0] for v in values):
        return [values[0], 0.0]
    return [float(np.mean(values)), float(np.std(values))]


@torch.inference_mode()
def _vectors(
    user_vectors: UserVectorFn,
    histories: Sequence[np.ndarray],
    users: np.ndarray,
    window: int,
    config: EvalConfig,
) -> torch.Tensor:
    """The user vectors ``[n, d]`` of ``histories`` (their last ``window`` items)."""
    parts = []
    for start in range(0, len(histories), config.batch_size):
        stop = start + config.batch_size
        batch = pad_right(histories[start:stop], window)
        parts.append(user_vectors(batch, torch.from_numpy(users[start:stop])).float())
    return torch.cat(parts) if parts else torch.zeros(0, 1)
