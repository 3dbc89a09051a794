"""Paired bootstrap intervals of a relative difference between two models' means."""

from __future__ import annotations

import numpy as np
import pytest

from slimrec.eval.bootstrap import paired_bootstrap


def test_identical_models_give_zero_with_a_zero_width_interval():
    b = np.random.default_rng(0).random(500)
    got = paired_bootstrap(b, b)
    assert got is not None
    assert got.estimate == got.low == got.high == 0.0 and not got.excludes_zero


def test_a_uniform_gain_is_recovered_exactly():
    b = np.random.default_rng(1).random((3, 400)) + 0.1
    got = paired_bootstrap(1.1 * b, b)
    assert got.estimate == pytest.approx(10.0)
    assert got.low == pytest.approx(10.0) and got.high == pytest.approx(10.0)
    assert got.excludes_zero and got.n_users == 400
    assert got.format() == "+10.00% [+10.0, +10.0]"


def test_pairing_narrows_the_interval_and_it_covers_the_truth():
    rng = np.random.default_rng(2)
    user_effect = rng.random(2000)  # shared by both models: pairing cancels it
    b = user_effect + 0.05 * rng.standard_normal(2000)
    a = user_effect * 1.05 + 0.05 * rng.standard_normal(2000)
    paired = paired_bootstrap(a, b)
    unpaired = paired_bootstrap(a, rng.permutation(b))
    truth = 100 * (a.mean() / b.mean() - 1)
    assert paired.low < truth < paired.high
    assert paired.high - paired.low < 0.5 * (unpaired.high - unpaired.low)


def test_seeds_are_averaged_per_user_and_users_must_match():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])  # two seeds: every user averages 0.5
    b = np.full((2, 2), 0.5)
    assert paired_bootstrap(a, b).estimate == 0.0
    with pytest.raises(ValueError, match="same users"):
        paired_bootstrap(np.ones(3), np.ones(4))
    assert paired_bootstrap(np.ones(3), np.zeros(3)) is None
