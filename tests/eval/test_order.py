"""The shuffle test: perturbations stay in the window, are shared by models, and an
order-blind scorer does not move."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimrec.eval import EvalConfig
from slimrec.eval.order import OrderConfig, order_sensitivity, perturb
from slimrec.eval.sampling import sample_negatives

N_ITEMS = 30


def histories(n: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [rng.choice(np.arange(1, N_ITEMS + 1), size=int(rng.integers(1, 12)), replace=False)
            for _ in range(n)]  # fmt: skip


@pytest.mark.parametrize("kind", ["shuffle", "reverse", "shuffle-keep-last"])
def test_only_the_visible_window_moves_and_keeps_its_items(kind):
    hists = histories()
    window = 5
    for h, p in zip(hists, perturb(hists, window, kind, seed=1), strict=True):
        cut = max(len(h) - window, 0)
        assert np.array_equal(h[:cut], p[:cut])  # older items stay
        assert sorted(h[cut:]) == sorted(p[cut:])  # the same items are seen
        if len(h) == 1:
            assert np.array_equal(h, p)
        if kind == "reverse":
            assert np.array_equal(p[cut:], h[cut:][::-1])
        if kind == "shuffle-keep-last":
            assert p[-1] == h[-1]
    moved = [
        not np.array_equal(h, p) for h, p in zip(hists, perturb(hists, window, kind), strict=True)
    ]
    assert sum(moved) > len(hists) // 2


def test_permutations_depend_on_seed_repeat_and_user_only():
    hists = histories()
    a = perturb(hists, 8, "shuffle", seed=3, repeat=1)
    assert all(
        np.array_equal(x, y)
        for x, y in zip(a, perturb(hists, 8, "shuffle", seed=3, repeat=1), strict=True)
    )
    assert not all(
        np.array_equal(x, y)
        for x, y in zip(a, perturb(hists, 8, "shuffle", seed=4, repeat=1), strict=True)
    )
    assert not all(
        np.array_equal(x, y)
        for x, y in zip(a, perturb(hists, 8, "shuffle", seed=3, repeat=2), strict=True)
    )
    # A user's permutation does not depend on who else is evaluated with them.
    alone = perturb(hists[7:8], 8, "shuffle", seed=3, repeat=1, users=[7])
    assert np.array_equal(alone[0], a[7])


def test_sampled_negatives_are_the_same_for_the_perturbed_histories():
    hists = histories()
    targets = np.array([(h[-1] % N_ITEMS) + 1 for h in hists])
    shuffled = perturb(hists, 6, "shuffle")
    a = sample_negatives(hists, targets, N_ITEMS, 10, np.random.default_rng(0))
    b = sample_negatives(shuffled, targets, N_ITEMS, 10, np.random.default_rng(0))
    assert np.array_equal(a, b)


def scorers():
    """An order-blind scorer (a bag of the window's items) and one that reads the last item."""
    table = torch.randn(N_ITEMS + 1, 8, generator=torch.Generator().manual_seed(0))
    table[0] = 0

    def vectors(seqs, users, last_only):
        if last_only:
            lengths = (seqs > 0).sum(1).clamp(min=1)
            return table[seqs[torch.arange(len(seqs)), lengths - 1]]
        return table[seqs].sum(1)

    def make(last_only):
        def score(seqs, candidates, users):
            u = vectors(seqs, users, last_only)
            return u @ table.T if candidates is None else (u[:, None] * table[candidates]).sum(-1)

        return score, lambda seqs, users: vectors(seqs, users, last_only)

    return make(False), make(True)


@pytest.mark.parametrize("protocol", ["full", "sampled"])
def test_an_order_blind_scorer_does_not_move_and_a_last_item_scorer_does(protocol):
    hists = histories()
    targets = np.array([(h[-1] % N_ITEMS) + 1 for h in hists])
    (bag, bag_vectors), (last, last_vectors) = scorers()
    cfg = EvalConfig(protocol=protocol, ks=(5,), n_negatives=10)
    kw = dict(window=6, users=np.arange(len(hists)))
    order = OrderConfig(repeats=2)
    blind = order_sensitivity(
        bag, hists, targets, N_ITEMS, cfg, order, user_vectors=bag_vectors, **kw
    )
    assert blind["change_pct"]["hit@5"] == 0.0 and blind["perturbed"]["hit@5"][1] == 0.0
    assert blind["cosine"] == pytest.approx(1.0, abs=1e-6)
    seq = order_sensitivity(
        last, hists, targets, N_ITEMS, cfg, order, user_vectors=last_vectors, **kw
    )
    assert seq["original"]["hit@5"] > seq["perturbed"]["hit@5"][0]
    assert seq["cosine"] < 0.9
    assert seq["repeats"] == 2 and seq["window"] == 6 and seq["n_users"] == len(hists)
    keep = order_sensitivity(
        last,
        hists,
        targets,
        N_ITEMS,
        cfg,
        OrderConfig(perturbation="shuffle-keep-last"),
        user_vectors=last_vectors,
        **kw,
    )
    assert keep["change_pct"]["hit@5"] == 0.0  # it reads only the last item, which stays
