"""Negatives for the sampled protocol: distinct items the user has not interacted with.

The SLIM paper (Wang et al., WWW 2024) ranks each target among 100 sampled negatives.
A negative is never the target nor an item of the user's history, and a user's negatives
are distinct. With 100k users x 100 negatives over a 100k-item catalog a loop per user
or per item is far too slow, so sampling is vectorised rejection sampling: i.i.d. draws
for a block of users at once, rejecting draws that hit the user's items (one lookup in a
sorted array of ``user * (n_items + 1) + item`` keys) or repeat an earlier draw of the
row; the first ``n`` survivors in draw order are kept. That is exactly sampling without
replacement from the allowed items (uniform, or successive sampling proportional to
popularity). Rows left short get more draws appended (never redrawn, which would bias
popularity sampling); the rare user whose allowed items are nearly all rejected is
sampled exactly with ``Generator.choice(replace=False)``. Everything is drawn up front
from one seeded generator, so the negatives do not depend on the evaluation batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slimrec.errors import ConfigError

BLOCK_USERS = 4096  # users per vectorised block: bounds memory, not results


def sample_negatives(
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    n: int,
    rng: np.random.Generator,
    popularity: np.ndarray | None = None,
) -> np.ndarray:
    """``[U, n]`` distinct negatives per user in ``1..n_items``, none seen nor the target.

    ``popularity[i]`` (length ``n_items + 1``, index 0 ignored) weighs item ``i``: draws
    are proportional to it, so items with weight 0 are never drawn. ``None``: uniform.
    """
    n_users, stride = len(histories), n_items + 1
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=n_users)
    items = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories] or [[]])
    items = items.astype(np.int64)
    if len(items) and (items.min() < 0 or items.max() > n_items):
        raise ConfigError(f"history item ids must lie in 0..{n_items} (0 = padding)")
    users = np.repeat(np.arange(n_users), lengths)
    keep = items > 0
    seen = np.sort(
        np.concatenate([users[keep] * stride + items[keep], np.arange(n_users) * stride + targets])
    )
    seen = seen[np.r_[True, seen[1:] != seen[:-1]]] if len(seen) else seen  # np.unique, faster
    bounds = np.searchsorted(seen, np.arange(n_users + 1) * stride)  # user u: bounds[u:u+2]

    weights = _weights(popularity, n_items)
    allowed = (weights > 0).sum() - np.bincount(
        seen // stride, weights=weights[seen % stride - 1] > 0, minlength=n_users
    )
    if n_users and allowed.min() < n:
        user = int(np.argmin(allowed))
        raise ConfigError(
            f"user {user} (0-based) has only {int(allowed[user])} items left to sample from "
            f"after removing the {int(bounds[user + 1] - bounds[user])} items it interacted "
            f"with, fewer than {n} negatives",
            fix="lower n_negatives, or use the full protocol",
        )
    cdf = np.cumsum(weights)
    last = int(np.flatnonzero(weights)[-1]) if len(weights) else 0

    def draw(shape: tuple[int, int]) -> np.ndarray:
        if popularity is None:
            return rng.integers(1, n_items + 1, size=shape)
        u = rng.random(shape) * cdf[-1]
        return np.searchsorted(cdf, u, side="right").clip(max=last) + 1

    out = np.zeros((n_users, n), dtype=np.int64)
    for lo in range(0, n_users, BLOCK_USERS):
        rows = np.arange(lo, min(lo + BLOCK_USERS, n_users))
        block = seen[bounds[rows[0]] : bounds[rows[-1] + 1]]
        draws = draw((len(rows), n + n // 4 + 16))
        while len(rows):
            taken, done = _first_valid(draws, rows * stride, block, n)
            out[rows[done]] = taken
            rows, draws = rows[~done], draws[~done]
            if len(rows) and draws.shape[1] > 64 * n + 1024:  # nearly everything rejected
                for u in rows:
                    out[u] = _exact(seen[bounds[u] : bounds[u + 1]] - u * stride, weights, n, rng)
                break
            if len(rows):
                draws = np.concatenate([draws, draw(draws.shape)], axis=1)
    return out


def _weights(popularity: np.ndarray | None, n_items: int) -> np.ndarray:
    if popularity is None:
        return np.ones(n_items)
    popularity = np.asarray(popularity, dtype=np.float64)
    if popularity.ndim != 1 or len(popularity) != n_items + 1:
        raise ConfigError(
            f"item popularity must have n_items + 1 = {n_items + 1} entries (index 0 = "
            f"padding), got shape {popularity.shape}"
        )
    weights = popularity[1:]
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ConfigError("item popularity must be finite counts >= 0")
    return weights


def _first_valid(
    draws: np.ndarray, row_keys: np.ndarray, seen: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` valid draws of each finished row, and which rows finished."""
    keys = row_keys[:, None] + draws
    pos = np.searchsorted(seen, keys).clip(max=max(len(seen) - 1, 0))
    valid = seen[pos] != keys if len(seen) else np.ones(keys.shape, dtype=bool)
    # Only the first occurrence of an item in a row counts (stable sort keeps draw order).
    order = np.argsort(draws, axis=1, kind="stable")
    ordered = np.take_along_axis(draws, order, axis=1)
    first = np.ones(draws.shape, dtype=bool)
    first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    is_first = np.empty_like(first)
    np.put_along_axis(is_first, order, first, axis=1)
    valid &= is_first
    rank = np.cumsum(valid, axis=1)
    done = rank[:, -1] >= n
    take = valid[done] & (rank[done] <= n)
    return draws[done][take].reshape(-1, n), done


def _exact(seen_items: np.ndarray, weights: np.ndarray, n: int, rng: np.random.Generator):
    """Exact sampling without replacement for one user (slow path, rare)."""
    free = np.ones(len(weights) + 1, dtype=bool)
    free[0] = False
    free[seen_items] = False
    free[1:] &= weights > 0
    allowed = np.flatnonzero(free)
    p = weights[allowed - 1]
    return rng.choice(allowed, size=n, replace=False, p=p / p.sum())
