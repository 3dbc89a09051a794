"""Full ranking and the sampled protocol, through one code path."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest
import torch

from slimrec.errors import ConfigError
from slimrec.eval import EvalConfig, evaluate, pad_right, sample_negatives

N_ITEMS = 500


@pytest.fixture(scope="module")
def users():
    rng = np.random.default_rng(0)
    histories = [
        rng.choice(np.arange(1, N_ITEMS + 1), size=rng.integers(1, 40), replace=False)
        for _ in range(2000)
    ]
    targets = rng.integers(1, N_ITEMS + 1, size=len(histories))
    return histories, targets


def scorer_from_table(table: torch.Tensor):
    """Score = a fixed per-item value (ignores the history)."""

    def score(seqs, candidates):
        full = table.expand(seqs.shape[0], -1)
        return full if candidates is None else full.gather(1, candidates)

    return score


def recording(score):
    """Wrap a scorer to keep every (histories, candidates) batch it was called with."""

    def wrapped(seqs, candidates):
        wrapped.calls.append((seqs.clone(), None if candidates is None else candidates.clone()))
        return score(seqs, candidates)

    wrapped.calls = []
    return wrapped


def test_pad_right_keeps_the_most_recent():
    seqs = pad_right([np.array([1, 2, 3, 4]), np.array([7])], max_len=2)
    assert seqs.dtype == torch.long and seqs.tolist() == [[3, 4], [7, 0]]
    assert pad_right([[5, 6], []]).tolist() == [[5, 6], [0, 0]]
    assert pad_right([np.array([], dtype=np.int64)]).tolist() == [[0]]


def test_history_masking_and_the_target_is_never_masked():
    # Items 1..5; item 5 scores highest, then 4, ...; the user's history holds 5 and 4.
    score = scorer_from_table(torch.tensor([[0.0, 1, 2, 3, 4, 5]]))
    hist, target = [np.array([5, 4])], np.array([3])
    masked = evaluate(score, hist, target, 5, EvalConfig(ks=(1,)))
    unmasked = evaluate(score, hist, target, 5, EvalConfig(ks=(1, 3), mask_history=False))
    assert masked["hit@1"] == 1.0 and unmasked["hit@1"] == 0.0 and unmasked["hit@3"] == 1.0
    assert unmasked["mrr@3"] == pytest.approx(1 / 3)
    # The target is in the history itself (a repeat): still ranked, not masked.
    again = evaluate(score, [np.array([5, 3])], np.array([5]), 5, EvalConfig(ks=(1,)))
    assert again["hit@1"] == 1.0 and again["n_users"] == 1.0
    # The model sees only the last item, but masking uses the whole history.
    cut = evaluate(score, hist, target, 5, EvalConfig(ks=(1,)), max_history_len=1)
    assert cut["hit@1"] == 1.0


def test_masked_items_do_not_tie_with_the_target():
    # Every item scores 0: ties everywhere; items 1, 2 are masked, 3 candidates remain.
    score = scorer_from_table(torch.zeros(1, 6))
    got = evaluate(score, [np.array([1, 2])], np.array([3]), 5, EvalConfig(ks=(1,)))
    assert got["hit@1"] == pytest.approx(1 / 3)


def test_padding_column_is_never_ranked():
    table = torch.tensor([[99.0, 1, 2, 3]])  # a scorer that wrongly loves item 0
    got = evaluate(scorer_from_table(table), [np.array([1])], np.array([3]), 3, EvalConfig(ks=(1,)))
    assert got["hit@1"] == 1.0
    # Without masking and with the target tied to item 0's score, 0 is still not a tie.
    table = torch.tensor([[5.0, 5.0, 1.0, 1.0]])
    cfg = EvalConfig(ks=(1,), mask_history=False)
    assert evaluate(scorer_from_table(table), [[]], np.array([1]), 3, cfg)["hit@1"] == 1.0


def test_full_ranking_does_not_depend_on_batch_size(users):
    histories, targets = users
    table = torch.randint(0, 5, (1, N_ITEMS + 1), generator=torch.Generator().manual_seed(0))
    runs = [
        evaluate(
            scorer_from_table(table.float()), histories, targets, N_ITEMS, EvalConfig(batch_size=b)
        )
        for b in (7, 2000)
    ]
    assert runs[0] == runs[1]


def test_negatives_are_valid_distinct_and_deterministic(users):
    histories, targets = users
    negs = sample_negatives(histories, targets, N_ITEMS, 100, np.random.default_rng(1))
    assert negs.shape == (len(histories), 100) and negs.min() >= 1 and negs.max() <= N_ITEMS
    for h, t, row in zip(histories, targets, negs, strict=True):
        assert len(set(row)) == 100
        assert not set(row) & (set(h) | {t})
    again = sample_negatives(histories, targets, N_ITEMS, 100, np.random.default_rng(1))
    assert np.array_equal(negs, again)
    other = sample_negatives(histories, targets, N_ITEMS, 100, np.random.default_rng(2))
    assert not np.array_equal(negs, other)


def test_sampled_candidates_are_the_same_for_every_batch_size(users):
    histories, targets = users
    table = torch.randn(1, N_ITEMS + 1, generator=torch.Generator().manual_seed(0))
    scorers = [recording(scorer_from_table(table)) for _ in range(3)]
    runs = [
        evaluate(s, histories, targets, N_ITEMS, EvalConfig(protocol="sampled", batch_size=b))
        for s, b in zip(scorers, (7, 256, 5000), strict=True)
    ]
    assert runs[0] == runs[1] == runs[2]
    candidates = [torch.cat([c for _, c in s.calls]) for s in scorers]
    assert torch.equal(candidates[0], candidates[1]) and torch.equal(candidates[0], candidates[2])
    cand = candidates[0].numpy()
    assert cand.shape == (len(histories), 101) and np.array_equal(cand[:, 0], targets)
    for h, t, row in zip(histories, targets, cand, strict=True):
        assert len(set(row)) == 101 and not set(row[1:]) & (set(h) | {t})


def test_popularity_sampling_prefers_popular_items(users):
    histories, targets = users
    popularity = np.ones(N_ITEMS + 1)
    popularity[1:51] = 1000  # items 1..50 are hugely popular
    popularity[491:] = 0  # items 491..500 never occur in training: never drawn
    negs = sample_negatives(histories, targets, N_ITEMS, 100, np.random.default_rng(0), popularity)
    assert np.isin(negs, np.arange(1, 51)).mean() > 0.4  # uniform would give about 0.1
    assert negs.max() <= 490
    for h, t, row in zip(histories, targets, negs, strict=True):
        assert len(set(row)) == 100 and not set(row) & (set(h) | {t})
    uniform = sample_negatives(histories, targets, N_ITEMS, 100, np.random.default_rng(0))
    assert np.isin(uniform, np.arange(1, 51)).mean() < 0.15


def test_user_whose_history_holds_nearly_all_the_mass_is_sampled_exactly():
    popularity = np.ones(301)
    popularity[1:201] = 1e12  # the user has seen all of these
    negs = sample_negatives(
        [np.arange(1, 201)], np.array([201]), 300, 99, np.random.default_rng(0), popularity
    )
    assert sorted(negs[0]) == list(range(202, 301))


def test_oracle_and_random_scorers(users):
    histories, targets = users
    batch = {"targets": None}

    def oracle(seqs, candidates):
        if candidates is None:  # knows the target of each row of the batch
            out = torch.zeros(seqs.shape[0], N_ITEMS + 1)
            out[torch.arange(len(out)), batch["targets"]] = 1.0
            return out
        return (candidates == candidates[:, :1]).float()

    cfg = EvalConfig(ks=(1, 10), batch_size=len(histories))
    batch["targets"] = torch.from_numpy(targets)
    assert evaluate(oracle, histories, targets, N_ITEMS, cfg)["hit@1"] == 1.0
    sampled = cfg.model_copy(update={"protocol": "sampled"})
    assert evaluate(oracle, histories, targets, N_ITEMS, sampled)["hit@1"] == 1.0

    gen = torch.Generator().manual_seed(0)

    def random(seqs, candidates):
        return torch.rand(candidates.shape, generator=gen)

    many = [histories[i % len(histories)] for i in range(20_000)]
    many_targets = np.resize(targets, 20_000)
    got = evaluate(random, many, many_targets, N_ITEMS, sampled.model_copy(update={"seed": 3}))
    # Standard error sqrt(p (1 - p) / 20000) = 0.0021; allow ~4 of them.
    assert got["hit@10"] == pytest.approx(10 / 101, abs=0.009)
    assert got["n_users"] == 20_000


def test_clear_errors():
    with pytest.raises(ConfigError, match="fewer than 100 negatives"):
        sample_negatives([np.arange(1, 20)], np.array([20]), 30, 100, np.random.default_rng(0))
    popularity = np.r_[0, np.ones(10), np.zeros(190)]  # only 10 items can be drawn
    with pytest.raises(ConfigError, match="fewer than 20 negatives"):
        sample_negatives([[1]], np.array([2]), 200, 20, np.random.default_rng(0), popularity)
    with pytest.raises(ConfigError, match="n_items \\+ 1"):
        sample_negatives([[1]], np.array([2]), 200, 20, np.random.default_rng(0), np.ones(200))
    score = scorer_from_table(torch.zeros(1, 11))
    sampled = EvalConfig(protocol="sampled", negative_sampling="popularity", n_negatives=5)
    with pytest.raises(ConfigError, match="needs item_popularity"):
        evaluate(score, [[1]], np.array([2]), 10, sampled)
    with pytest.raises(ConfigError, match=r"in 1\.\.10"):
        evaluate(score, [[1]], np.array([11]), 10)
    with pytest.raises(ValueError, match="expected \\(1, 11\\)"):
        evaluate(scorer_from_table(torch.zeros(1, 10)), [[1]], np.array([2]), 10)
    with pytest.raises(pydantic.ValidationError):
        EvalConfig(ks=(0, 10))
    with pytest.raises(pydantic.ValidationError):
        EvalConfig(n_negative=100)  # a typo is not silently ignored


def test_no_users():
    got = evaluate(scorer_from_table(torch.zeros(1, 11)), [], np.array([]), 10)
    assert got["n_users"] == 0 and np.isnan(got["ndcg@10"])
