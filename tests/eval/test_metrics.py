"""Metrics against brute-force pure-Python references, ties included."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from slimrec.eval import rank_counts, ranking_metrics


def gains(rank: int, k: int) -> dict[str, float]:
    inside = rank <= k
    return {
        f"hit@{k}": float(inside),
        f"ndcg@{k}": 1.0 / math.log2(rank + 1) if inside else 0.0,
        f"mrr@{k}": 1.0 / rank if inside else 0.0,
    }


def reference(scores: list[float], target: int, k: int, ties: str) -> dict[str, float]:
    """Rank the target by explicit comparisons; "expected" averages over its tie positions."""
    t = scores[target]
    greater = sum(1 for j, s in enumerate(scores) if j != target and s > t)
    equal = sum(1 for j, s in enumerate(scores) if j != target and s == t)
    if ties == "optimistic":
        ranks = [greater + 1]
    elif ties == "pessimistic":
        ranks = [greater + equal + 1]
    else:  # every position among the ties is equally likely
        ranks = list(range(greater + 1, greater + equal + 2))
    per_rank = [gains(r, k) for r in ranks]
    return {name: sum(g[name] for g in per_rank) / len(ranks) for name in per_rank[0]}


def enumerate_orders(scores: list[float], target: int, k: int) -> dict[str, float]:
    """Mean metric over every tie-breaking order (all permutations, then a stable sort)."""
    totals: dict[str, float] = {}
    orders = list(itertools.permutations(range(len(scores))))
    for order in orders:
        ranking = sorted(order, key=lambda j: -scores[j])  # stable: ties keep `order`
        for name, value in gains(ranking.index(target) + 1, k).items():
            totals[name] = totals.get(name, 0.0) + value
    return {name: total / len(orders) for name, total in totals.items()}


@pytest.mark.parametrize("ties", ["expected", "pessimistic", "optimistic"])
@pytest.mark.parametrize("levels", [2, 3, 20, 10_000])  # few levels = many ties
def test_matches_reference_on_random_data(ties, levels):
    gen = torch.Generator().manual_seed(levels)
    scores = torch.randint(0, levels, (200, 57), generator=gen).float()
    scores[:, 5] = float("-inf")  # a masked column never ties
    target = torch.randint(0, 57, (200,), generator=gen)
    target[target == 5] = 6
    ks = (1, 3, 5, 10, 20, 100)
    got = ranking_metrics(scores, target, ks, ties)
    assert set(got) == {f"{m}@{k}" for m in ("ndcg", "hit", "mrr") for k in ks}
    for i in range(200):
        for k in ks:
            ref = reference(scores[i].tolist(), int(target[i]), k, ties)
            for name, value in ref.items():
                assert got[name][i].item() == pytest.approx(value, abs=1e-9), (name, i)


def test_expected_equals_the_average_over_every_tie_breaking_order():
    gen = torch.Generator().manual_seed(7)
    scores = torch.randint(0, 3, (40, 6), generator=gen).double()
    target = torch.randint(0, 6, (40,), generator=gen)
    got = ranking_metrics(scores, target, (1, 2, 4), "expected")
    for i in range(40):
        for k in (1, 2, 4):
            ref = enumerate_orders(scores[i].tolist(), int(target[i]), k)
            for name, value in ref.items():
                assert got[name][i].item() == pytest.approx(value, abs=1e-12), (name, i)


def test_all_equal_scores():
    scores = torch.zeros(4, 101)
    target = torch.zeros(4, dtype=torch.long)
    expected = ranking_metrics(scores, target, (10,), "expected")
    assert expected["hit@10"].tolist() == pytest.approx([10 / 101] * 4)
    ndcg = sum(1 / math.log2(r + 1) for r in range(1, 11)) / 101
    assert expected["ndcg@10"].tolist() == pytest.approx([ndcg] * 4)
    assert ranking_metrics(scores, target, (10,), "optimistic")["hit@10"].tolist() == [1.0] * 4
    assert ranking_metrics(scores, target, (10,), "pessimistic")["hit@10"].tolist() == [0.0] * 4


def test_k_beyond_the_catalog_and_a_perfect_ranking():
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    got = ranking_metrics(scores, torch.tensor([0]), (1, 50))
    assert got["ndcg@1"].item() == 1.0 and got["mrr@50"].item() == 1.0
    assert got["hit@50"].item() == 1.0
    got = ranking_metrics(scores, torch.tensor([2]), (50,))
    assert got["ndcg@50"].item() == pytest.approx(0.5)
    assert got["mrr@50"].item() == pytest.approx(1 / 3)
    # All tied, K beyond the catalog: every position is inside the cut-off.
    got = ranking_metrics(torch.ones(1, 3), torch.tensor([1]), (50,))
    assert got["hit@50"].item() == 1.0
    assert got["mrr@50"].item() == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)


def test_masked_items_never_tie_and_target_scores_variant():
    inf = float("-inf")
    scores = torch.tensor([[inf, 0.5, inf, 0.2, 0.5], [inf, inf, inf, 1.0, 0.0]])
    n_greater, n_equal = rank_counts(scores, target_index=torch.tensor([3, 4]))
    assert n_greater.tolist() == [2, 1] and n_equal.tolist() == [0, 0]
    # The target's score given separately (not a column): nothing to exclude.
    n_greater, n_equal = rank_counts(scores, target_scores=torch.tensor([0.5, inf]))
    assert n_greater.tolist() == [0, 2] and n_equal.tolist() == [2, 3]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="NaN"):
        ranking_metrics(torch.tensor([[1.0, float("nan")]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="positive integers"):
        ranking_metrics(torch.zeros(1, 3), torch.tensor([0]), (0,))
    with pytest.raises(ValueError, match="tie policy"):
        ranking_metrics(torch.zeros(1, 3), torch.tensor([0]), (1,), "random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exactly one"):
        rank_counts(torch.zeros(1, 3))
