"""Test users grouped by the length of their history, for comparisons within each group.

A mean over all test users hides whom a method serves: text about a user should matter
most where the sequence says least (a handful of items), and a gain spread evenly over
lengths reads differently from one carried by a few long histories. Users are split into
groups of about equal size by the number of items before their test item; a length is
never split between two groups, so ties can leave groups unequal (or fewer of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UserGroup:
    """Users (indices into the test users) whose history holds ``low..high`` items."""

    low: int
    high: int
    users: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.low}" if self.low == self.high else f"{self.low}-{self.high}"


def history_groups(lengths: np.ndarray, n_groups: int) -> list[UserGroup]:
    """``n_groups`` (or fewer, where lengths tie) groups of users, shortest first."""
    if n_groups < 1:
        raise ValueError(f"n_groups must be at least 1, got {n_groups}")
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) == 0:
        return []
    ordered = np.sort(lengths)
    # The length at each cut position closes a group: everything up to it goes below.
    cuts = [int(ordered[len(ordered) * k // n_groups - 1]) for k in range(1, n_groups)]
    highs = sorted({*cuts, int(ordered[-1])})
    groups, low = [], int(ordered[0])
    for high in highs:
        users = np.flatnonzero((lengths >= low) & (lengths <= high))
        if len(users):
            groups.append(UserGroup(int(lengths[users].min()), high, users))
        low = high + 1
    return groups
