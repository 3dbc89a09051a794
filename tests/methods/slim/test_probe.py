"""The zero-training probe: where a user text ranks the user's next item by cosine, against
the titles that text was written from (slimrec.methods.slim.probe)."""

from __future__ import annotations

import numpy as np
from tests.methods.synthetic import hint_data

from slimrec.methods.slim import text_control
from slimrec.methods.slim.probe import probe, target_ranks


def test_ranks_count_the_closer_items_and_mask_the_history_but_never_the_target():
    items = np.array([[0, 0], [1, 0], [0.9, 0.1], [0, 1], [0.7, 0.7]], dtype=np.float32)
    users = np.array([[1, 0], [1, 0]], dtype=np.float32)
    targets = np.array([3, 4])  # item 3 is the farthest from (1, 0); item 4 in between
    histories = [np.array([1]), np.array([1, 2, 4])]
    got = target_ranks(users, items, histories, targets, np.arange(2))
    assert got.tolist() == [2, 0]  # item 1 masked, item 2 and 4 above; then 1, 2 masked
    same = np.array([[0, 0], [1, 0], [1, 0], [1, 0]], dtype=np.float32)  # three tied items
    tied = target_ranks(users[:1], same, [np.array([], dtype=np.int64)], np.array([2]), [0])
    assert tied.tolist() == [1.0]  # the two others count half each


def test_a_text_that_names_the_next_cluster_ranks_it_above_the_titles_and_another_users_not():
    data, item_text, user_text = hint_data(n_users=120, seed=3)
    # The hint names the cluster the user moves to; the rationale read only the intro.
    named = probe(user_text, item_text, data, hold_out=1, shown=0)
    assert named is not None and named.users == data.n_users
    assert named.rationale < 0.2 < named.titles and named.high < 0
    shuffled_text = text_control(user_text, "shuffled", seed=0)
    shuffled = probe(shuffled_text, item_text, data, hold_out=1, shown=0)
    assert shuffled is not None and shuffled.gap > named.gap + 20


def test_no_user_text_means_no_probe():
    data, item_text, user_text = hint_data(n_users=30, seed=0)
    assert probe(np.zeros_like(user_text), item_text, data, hold_out=1, shown=0) is None
