"""Metrics against a brute-force pure-Python reference, ties included."""

from __future__ import annotations

import math

import pytest
import torch

from slimrec.eval import ranking_metrics


def reference(scores: list[float], target: int, k: int, ties: str) -> dict[str, float]:
    """Rank the target by explicit comparisons, then average over tie positions."""
    t = scores[target]
    greater = sum(1 for j, s in enumerate(scores) if j != target and s > t)
    equal = sum(1 for j, s in enumerate(scores) if j != target and s == t)
    if ties == "optimistic":
        ranks = [greater + 1]
    elif ties == "pessimistic":
        ranks = [greater + equal + 1]
    else:  # every position among the ties is equally likely
        ranks = list(range(greater + 1, greater + equal + 2))
    hit = sum(1.0 for r in ranks if r <= k) / len(ranks)
    ndcg = sum(1.0 / math.log2(r + 1) for r in ranks if r <= k) / len(ranks)
    mrr = sum(1.0 / r for r in ranks if r <= k) / len(ranks)
    return {f"hit@{k}": hit, f"ndcg@{k}": ndcg, f"mrr@{k}": mrr}


@pytest.mark.parametrize("ties", ["expected", "pessimistic", "optimistic"])
@pytest.mark.parametrize("levels", [3, 20, 10_000])  # few levels = many ties
def test_matches_reference_on_random_data(ties, levels):
    gen = torch.Generator().manual_seed(levels)
    scores = torch.randint(0, levels, (200, 57), generator=gen).float()
    scores[:, 5] = float("-inf")  # a masked column never ties
    target = torch.randint(0, 57, (200,), generator=gen)
    target[target == 5] = 6
    ks = (1, 5, 10, 20, 100)
    got = ranking_metrics(scores, target, ks, ties)
    for i in range(200):
        for k in ks:
            ref = reference(scores[i].tolist(), int(target[i]), k, ties)
            for name, value in ref.items():
                assert got[name][i].item() == pytest.approx(value, abs=1e-6), (name, i)


def test_all_equal_scores_give_the_random_expectation():
    scores = torch.zeros(4, 101)
    got = ranking_metrics(scores, torch.zeros(4, dtype=torch.long), (10,), "expected")
    assert got["hit@10"].tolist() == pytest.approx([10 / 101] * 4)
    assert (
        ranking_metrics(scores, torch.zeros(4, dtype=torch.long), (10,), "optimistic")[
            "hit@10"
        ].tolist()
        == [1.0] * 4
    )
    assert (
        ranking_metrics(scores, torch.zeros(4, dtype=torch.long), (10,), "pessimistic")[
            "hit@10"
        ].tolist()
        == [0.0] * 4
    )


def test_k_beyond_the_catalog_and_a_perfect_ranking():
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    got = ranking_metrics(scores, torch.tensor([0]), (1, 50))
    assert (
        got["ndcg@1"].item() == 1.0 and got["mrr@50"].item() == 1.0 and got["hit@50"].item() == 1.0
    )
    got = ranking_metrics(scores, torch.tensor([2]), (50,))
    assert got["ndcg@50"].item() == pytest.approx(0.5) and got["mrr@50"].item() == pytest.approx(
        1 / 3
    )
