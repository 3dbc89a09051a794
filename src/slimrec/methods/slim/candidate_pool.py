"""Catalog items offered to the teacher: what followed the user's recent items elsewhere.

SLIM's third step asks the teacher for concrete items (Wang et al., WWW 2024, Sec. 3.1).
A teacher that does not know the catalog names items that are not in it or restates the
history: the 0.5B and 1.5B teachers named items new to the user for 0-3% of their
suggestions on ml-100k and amazon-office (docs/benchmarks.md, "Rationales grounded in
the catalog"). LLM rankers (TALLRec, LLaRA, DELRec) offer candidates instead. This pool
offers, per user, the catalog items that most often came within ``window`` steps after
the user's ``recent`` most recent items in the histories of all users -- a first-order
"what comes next" count, recency-weighted (``1/k`` for the k-th most recent), ties
broken by popularity then item id; never an item the user already has.

The counts are taken from what the prompts show (each history cut where its rationale is
cut): a held-out training target is never counted from its own user's record (other
users' histories may still lead to it, as they may to a test item), so the recommender
meets rationales in training as it meets them at validation and test. The
pool's own ranking is the control the teacher's picks are measured against
(:func:`~slimrec.methods.slim.grounding.run_grounding`'s *pool hit*).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# Part of the teach and reason stages' keys where candidates are offered: bump it when
# what the pool offers changes (the prompts change with it).
POOL_VERSION = "follows-w3-r5-v1"


class CandidatePool:
    """Per user, the items most often seen next after their recent items."""

    def __init__(
        self, histories: Sequence[Sequence[int]], n_items: int, window: int = 3, recent: int = 5
    ):
        if window < 1 or recent < 1:
            raise ValueError(f"window and recent must be >= 1, got {window} and {recent}")
        self.recent = recent
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        for history in histories:
            seq = np.asarray(history, dtype=np.int64)
            for step in range(1, window + 1):
                rows.append(seq[:-step])
                cols.append(seq[step:])
        row = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
        col = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
        size = n_items + 1  # item ids run 1..n_items; 0 is padding
        # (item, later item) pairs counted, grouped by item: a sparse matrix in three arrays
        pairs, counts = np.unique(row * size + col, return_counts=True)
        self.later, self.counts = pairs % size, counts.astype(np.float64)
        self.starts = np.searchsorted(pairs // size, np.arange(size + 1))
        every = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories] or [row])
        self.popularity = np.bincount(every, minlength=size).astype(np.float64)
        ids = np.arange(1, size)
        # lexsort's last key is the first: popularity, then the lower id
        self.by_popularity = ids[np.lexsort((ids, -self.popularity[1:]))].tolist()

    def ranked(self, history: Sequence[int], n: int) -> list[int]:
        """The ``n`` best items for ``history`` (oldest first), best first; none of them
        in ``history``, never the padding id 0. Items that followed a recent one rank by
        their score, then popularity, then id; the rest by popularity, then id, after them
        (one sort of the few scored items per user, not of the catalog)."""
        seen = {int(i) for i in history}
        scores: dict[int, float] = {}
        for k, item in enumerate(reversed(list(history)[-self.recent :]), start=1):
            span = slice(self.starts[int(item)], self.starts[int(item) + 1])
            for j, count in zip(self.later[span].tolist(), self.counts[span].tolist(), strict=True):
                if j not in seen:
                    scores[j] = scores.get(j, 0.0) + count / k
        # rounded: a tie must not hang on the order floats were summed in
        best = sorted(scores, key=lambda j: (-round(scores[j], 9), -self.popularity[j], j))[:n]
        for j in self.by_popularity:
            if len(best) >= n:
                break
            if j not in seen and j not in scores:
                best.append(j)
        return best

    def offer(self, history: Sequence[int], n: int, shown_title: Callable[[int], str]) -> list[int]:
        """The ``n`` best items for ``history`` whose titles, as a prompt shows them, differ
        (two items of one title could not say which a pick means), best first."""
        wanted = n
        while True:
            ranked = self.ranked(history, wanted)
            offered: list[int] = []
            titles: set[str] = set()
            for item in ranked:
                title = shown_title(item)
                if title not in titles:
                    titles.add(title)
                    offered.append(item)
            if len(offered) >= n or len(ranked) < wanted:  # enough, or the catalog ran out
                return offered[:n]
            wanted *= 2


def shown_order(items: Sequence[int]) -> list[int]:
    """``items`` in the order a prompt lists them: shuffled, seeded by the set itself, so
    the pool's ranking is not the list's order (a model's taste for the first lines is not
    credited as judgement) and the same set always reads the same."""
    ids = sorted(int(i) for i in items)
    rng = np.random.default_rng(ids)
    return [ids[i] for i in rng.permutation(len(ids))]
