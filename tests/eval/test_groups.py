"""Test users grouped by history length."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from slimrec.eval.groups import history_groups


def test_groups_are_about_equal_shortest_first_and_cover_every_user_once():
    lengths = np.random.default_rng(0).integers(3, 60, size=1000)
    groups = history_groups(lengths, 4)
    assert len(groups) == 4
    users = np.concatenate([g.users for g in groups])
    assert sorted(users.tolist()) == list(range(1000))
    assert all(250 - 40 < len(g.users) < 250 + 40 for g in groups)  # ties move a few
    for before, after in itertools.pairwise(groups):
        assert before.high < after.low
    for g in groups:
        assert lengths[g.users].min() == g.low and lengths[g.users].max() == g.high


def test_a_length_is_never_split_between_groups():
    lengths = np.array([4] * 60 + [5] * 30 + [9] * 10)
    groups = history_groups(lengths, 4)
    assert [(g.label, len(g.users)) for g in groups] == [("4", 60), ("5", 30), ("9", 10)]


def test_one_length_for_everyone_is_one_group():
    groups = history_groups(np.full(7, 12), 5)
    assert [(g.label, len(g.users)) for g in groups] == [("12", 7)]


def test_ranges_are_labelled_low_to_high():
    groups = history_groups(np.array([3, 4, 5, 6, 10, 11, 12, 40]), 2)
    assert [g.label for g in groups] == ["3-6", "10-40"]


def test_no_users_no_groups_and_no_groups_is_refused():
    assert history_groups(np.array([], dtype=int), 3) == []
    with pytest.raises(ValueError, match="at least 1"):
        history_groups(np.array([3, 4]), 0)
