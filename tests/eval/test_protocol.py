"""Full ranking and the sampled protocol, through one code path."""

from __future__ import annotations

import numpy as np
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


def test_pad_right_keeps_the_most_recent():
    seqs = pad_right([np.array([1, 2, 3, 4]), np.array([7])], max_len=2)
    assert seqs.tolist() == [[3, 4], [7, 0]]


def test_history_masking_and_the_target_is_never_masked():
    # Items 1..5; item 5 scores highest, then 4, ...; the user's history holds 5 and 4.
    table = torch.tensor([[0.0, 1, 2, 3, 4, 5]])
    score = scorer_from_table(table)
    hist, target = [np.array([5, 4])], np.array([3])
    masked = evaluate(score, hist, target, 5, EvalConfig(ks=(1,)))
    unmasked = evaluate(score, hist, target, 5, EvalConfig(ks=(1, 3), mask_history=False))
    assert masked["hit@1"] == 1.0 and unmasked["hit@1"] == 0.0 and unmasked["hit@3"] == 1.0
    # The target is in the history itself (a repeat): still ranked, not masked.
    again = evaluate(score, [np.array([5, 3])], np.array([5]), 5, EvalConfig(ks=(1,)))
    assert again["hit@1"] == 1.0


def test_padding_column_is_never_ranked():
    table = torch.tensor([[99.0, 1, 2, 3]])  # a scorer that wrongly loves item 0
    got = evaluate(scorer_from_table(table), [np.array([1])], np.array([3]), 3, EvalConfig(ks=(1,)))
    assert got["hit@1"] == 1.0


def test_negatives_are_valid_distinct_and_deterministic(users):
    histories, targets = users
    negs = sample_negatives(histories, targets, N_ITEMS, 100, np.random.default_rng(1))
    assert negs.shape == (len(histories), 100) and negs.min() >= 1 and negs.max() <= N_ITEMS
    for h, t, row in zip(histories, targets, negs, strict=True):
        assert len(set(row)) == 100
        assert not set(row) & (set(h) | {t})
    again = sample_negatives(histories, targets, N_ITEMS, 100, np.random.default_rng(1))
    assert np.array_equal(negs, again)


def test_sampled_results_do_not_depend_on_batch_size(users):
    histories, targets = users
    table = torch.randn(1, N_ITEMS + 1, generator=torch.Generator().manual_seed(0))
    runs = [
        evaluate(
            scorer_from_table(table),
            histories,
            targets,
            N_ITEMS,
            EvalConfig(protocol="sampled", batch_size=b),
        )
        for b in (7, 256, 5000)
    ]
    assert runs[0] == runs[1] == runs[2]


def test_popularity_sampling_prefers_popular_items(users):
    histories, targets = users
    popularity = np.zeros(N_ITEMS + 1)
    popularity[1:51] = 1000  # items 1..50 are hugely popular
    negs = sample_negatives(histories, targets, N_ITEMS, 100, np.random.default_rng(0), popularity)
    share = np.isin(negs, np.arange(1, 51)).mean()
    assert share > 0.4  # uniform sampling would give about 0.1
    uniform = sample_negatives(histories, targets, N_ITEMS, 100, np.random.default_rng(0))
    assert np.isin(uniform, np.arange(1, 51)).mean() < 0.15


def test_oracle_and_random_scorers(users):
    histories, targets = users

    def oracle(seqs, candidates):
        # Knows the target: looks it up from the row's position in the batch.
        out = (
            torch.zeros(seqs.shape[0], N_ITEMS + 1)
            if candidates is None
            else torch.zeros(candidates.shape)
        )
        if candidates is None:
            out[torch.arange(len(out)), oracle.targets] = 1.0
        else:
            out[:, 0] = 1.0
        return out

    cfg = EvalConfig(ks=(1, 10), batch_size=len(histories))
    oracle.targets = torch.from_numpy(targets)
    assert evaluate(oracle, histories, targets, N_ITEMS, cfg)["hit@1"] == 1.0
    sampled = cfg.model_copy(update={"protocol": "sampled"})
    assert evaluate(oracle, histories, targets, N_ITEMS, sampled)["hit@1"] == 1.0

    gen = torch.Generator().manual_seed(0)

    def random(seqs, candidates):
        shape = (seqs.shape[0], N_ITEMS + 1) if candidates is None else candidates.shape
        return torch.rand(shape, generator=gen)

    got = evaluate(random, histories, targets, N_ITEMS, sampled)
    assert got["hit@10"] == pytest.approx(10 / 101, abs=0.015)


def test_too_few_negatives_is_a_clear_error():
    hist = [np.arange(1, 20)]
    with pytest.raises(ConfigError, match="fewer than 100 negatives"):
        sample_negatives(hist, np.array([20]), 30, 100, np.random.default_rng(0))
