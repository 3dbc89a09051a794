"""Paired bootstrap intervals for the relative difference of two models' mean metric.

Two models scored on the same test users (and seeds) are compared user by user: resample
the users with replacement, recompute ``mean(a) / mean(b) - 1`` on the resample, and take
the percentiles (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13).
Pairing removes the between-user variance that both models share, so the interval is far
narrower than one built from two independent means; with several seeds each user's metric
is first averaged over the seeds, so the interval covers the test users, and the spread
over seeds is reported beside it (mean ± std).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A relative difference in percent with its bootstrap interval."""

    estimate: float
    low: float
    high: float
    level: float
    n_users: int

    def format(self) -> str:
        return f"{self.estimate:+.2f}% [{self.low:+.1f}, {self.high:+.1f}]"

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval | None:
    """Interval of ``100 * (mean(a) / mean(b) - 1)``; ``a``, ``b`` ``[n_seeds, n_users]``
    (or ``[n_users]``), the same users in the same order. None when ``mean(b)`` is 0."""
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired samples need the same users: {a.shape[1]} vs {b.shape[1]}")
    ua, ub = a.mean(axis=0), b.mean(axis=0)  # per user, averaged over seeds
    n = len(ua)
    if n == 0 or ub.mean() == 0:
        return None
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(n_resamples, n))
    ma, mb = ua[index].mean(axis=1), ub[index].mean(axis=1)
    valid = mb > 0
    ratios = 100.0 * (ma[valid] / mb[valid] - 1.0)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    estimate = 100.0 * (ua.mean() / ub.mean() - 1.0)
    return Interval(float(estimate), float(low), float(high), level, n)
