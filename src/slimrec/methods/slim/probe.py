"""Does a rationale point at the user's next item better than the titles it was written from?

A zero-training probe for SLIM (Wang et al., WWW 2024). SLIM's ID-agnostic variant
matches a user's rationale to item texts; here nothing is trained: every item is ranked by
the cosine between the user's text embedding and the item's, and the rank of the user's
test item is read off (full ranking, the user's history masked, as in slimrec's
evaluation). The reference is the ``history`` control
(:func:`slimrec.methods.slim.tables.history_text`): the mean text embedding of the items
the rationale read. A rationale that reasons about the user, rather than restating the
history, places the next item higher than those titles do; its gap carries a bootstrap
95% interval over users.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slimrec.data.prepared import PreparedDataset, items_read, rationale_cutoff
from slimrec.methods.slim.tables import history_text


def target_ranks(
    user_text: np.ndarray,
    item_text: np.ndarray,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    users: np.ndarray,
) -> np.ndarray:
    """Rank (0 = top) of each of ``users``' target among all items by cosine with the
    user's text; ``item_text`` has row 0 as padding, ``histories`` are masked (the target
    never is). Items tied with the target count half, so a text orthogonal to a whole
    part of the catalog does not rank its target first among them."""
    items = item_text[1:] / np.maximum(np.linalg.norm(item_text[1:], axis=1, keepdims=True), 1e-12)
    ranks = np.empty(len(users))
    for i, user in enumerate(users):
        text = user_text[user] / max(float(np.linalg.norm(user_text[user])), 1e-12)
        scores = items @ text
        target = int(targets[user]) - 1
        seen = np.unique(np.asarray(histories[user], dtype=np.int64)) - 1
        scores[seen[(seen >= 0) & (seen != target)]] = -np.inf
        ties = int((scores == scores[target]).sum()) - 1
        ranks[i] = int((scores > scores[target]).sum()) + ties / 2
    return ranks


def median_gap(
    a: np.ndarray, b: np.ndarray, *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """``median(a) - median(b)`` for paired per-user values, with its bootstrap 95%
    interval over users: ``(gap, low, high)``."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(len(a), size=(resamples, len(a)))
    gaps = np.median(a[draws], axis=1) - np.median(b[draws], axis=1)
    low, high = np.percentile(gaps, [2.5, 97.5])
    return float(np.median(a) - np.median(b)), float(low), float(high)


@dataclass(frozen=True)
class Probe:
    """Median test-item rank as a share of the catalogue, the rationale's and the titles',
    and the rationale minus the titles (percentage points, bootstrap 95% interval)."""

    users: int
    rationale: float
    titles: float
    gap: float
    low: float
    high: float


def probe(
    user_text: np.ndarray,
    item_text: np.ndarray,
    data: PreparedDataset,
    hold_out: int,
    shown: int,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> Probe | None:
    """The probe for the users with a rationale (None when no user has one)."""
    train, _ = data.split("train")
    read = [items_read(h[: rationale_cutoff(len(h), hold_out)], shown) for h in train]
    titles = history_text(user_text, item_text, read)
    # A zero vector would tie every item and rank the target first: such users are left out.
    users = np.flatnonzero((np.abs(user_text).sum(axis=1) > 0) & (np.abs(titles).sum(axis=1) > 0))
    if not len(users):
        return None
    histories, targets = data.split("test")
    n = data.n_items
    own = target_ranks(user_text, item_text, histories, targets, users) / n
    ref = target_ranks(titles, item_text, histories, targets, users) / n
    gap, low, high = median_gap(own, ref, resamples=resamples, seed=seed)
    rationale, reference = float(np.median(own)), float(np.median(ref))
    return Probe(len(users), rationale, reference, 100 * gap, 100 * low, 100 * high)
