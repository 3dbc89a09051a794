"""DELRec's training examples under slimrec's leave-one-out split, as plain arrays.

Sun & Zhang, arXiv 2406.11156; ../shared/specs/delrec.md Sec. 10.5. Everything here reads
only a user's training part ``T = s[:-2]`` and the SR model's top-h *after* ``T`` (the SR
model itself was trained on prefixes of ``T``), so no example holds a validation or test
item; candidates are distinct, hold the target once, hold no history item, and are
shuffled so the target's position spreads over the list. No LLM is needed to build or
test them.

* TA (stage 1): ``H = T[-(n + b):]``; in-context demonstration ``icl = H[:L-2]``, ``m = H[L-2]``
  followed by ``m1 = H[L-1]``; the user's part ``Q = H[b:]``: shown ``Q[:-2]``, then asked
  for ``X = Q[-2]`` given the item that followed it, ``Q[-1]`` (or the SR top-1).
* RPS (stage 1): ``H = T[-n:]``; target the SR model's top-1 ``r_1``, shown ``r_2..r_h``;
  candidates ``r_1..r_h`` plus negatives.
* LSR (stage 2 training): ``T[:-1][-n:] -> T[-1]`` with negatives outside ``T``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Example:
    """One prompt's items: ``candidates`` in prompt order, the answer at ``target``."""

    task: str
    user: int
    history: np.ndarray
    candidates: np.ndarray
    target: int
    extra: dict[str, np.ndarray | int] = field(default_factory=dict)

    @property
    def answer(self) -> int:
        return int(self.candidates[self.target])


def negatives(n: int, exclude: set[int], n_items: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct items of ``1..n_items`` outside ``exclude``, uniformly."""
    allowed = n_items - len({i for i in exclude if 1 <= i <= n_items})
    if n > allowed:
        raise ValueError(f"{n} negatives asked, {allowed} items allowed")
    out: list[int] = []
    taken = set(exclude)
    while len(out) < n:
        for item in rng.integers(1, n_items + 1, size=2 * (n - len(out)) + 4).tolist():
            if item not in taken:
                taken.add(item)
                out.append(item)
                if len(out) == n:
                    break
    return np.array(out, dtype=np.int64)


def _shuffled(
    positives: np.ndarray, n_candidates: int, exclude: set[int], n_items: int, rng
) -> tuple[np.ndarray, int]:
    """``positives`` (first = the target) plus negatives, shuffled; the target's index."""
    rest = negatives(n_candidates - len(positives), exclude | set(positives.tolist()), n_items, rng)
    candidates = np.concatenate([positives, rest])
    order = rng.permutation(len(candidates))
    return candidates[order], int(np.flatnonzero(order == 0)[0])


def ta_example(
    user: int,
    train: np.ndarray,
    n_candidates: int,
    n_items: int,
    rng: np.random.Generator,
    *,
    history_items: int,
    icl_length: int,
    icl_back: int,
    sr_top1: int | None = None,
) -> Example | None:
    """The Temporal Analysis example of one user, or None when the history is too short.

    The demonstration comes from the ``icl_back`` items before the user's part, so the
    user's part holds ``history_items`` items, as every other prompt's history."""
    h = train[-(history_items + icl_back) :]
    if len(h) < max(icl_length, icl_back + 3):
        return None
    q = h[icl_back:]
    x, nxt = int(q[-2]), int(q[-1] if sr_top1 is None else sr_top1)
    candidates, target = _shuffled(np.array([x]), n_candidates, set(train.tolist()), n_items, rng)
    extra = {"icl": h[: icl_length - 2], "m": int(h[icl_length - 2]), "m1": int(h[icl_length - 1])}
    extra |= {"user_part": q[:-2], "next": nxt}
    return Example("ta", user, h, candidates, target, extra)


def rps_example(
    user: int,
    train: np.ndarray,
    sr_top: np.ndarray,
    n_candidates: int,
    n_items: int,
    rng: np.random.Generator,
    *,
    history_items: int,
) -> Example:
    """The Recommendation Pattern Simulating example: the SR model's top-1 from its 2..h."""
    top = sr_top[: n_candidates - 1]  # leave room for at least one negative
    candidates, target = _shuffled(top, n_candidates, set(train.tolist()), n_items, rng)
    return Example("rps", user, train[-history_items:], candidates, target, {"sr_rest": top[1:]})


def lsr_example(
    user: int,
    train: np.ndarray,
    n_candidates: int,
    n_items: int,
    rng: np.random.Generator,
    *,
    history_items: int,
) -> Example | None:
    """Stage 2's training example: ``T[:-1] -> T[-1]`` (None for a one-item ``T``)."""
    if len(train) < 2:
        return None
    target = np.array([int(train[-1])])
    candidates, at = _shuffled(target, n_candidates, set(train.tolist()), n_items, rng)
    return Example("lsr", user, train[:-1][-history_items:], candidates, at)
