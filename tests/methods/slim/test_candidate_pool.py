"""The candidate pool: what followed the user's recent items elsewhere, never their own."""

from __future__ import annotations

import numpy as np

from slimrec.methods.slim.candidate_pool import CandidatePool, shown_order


def test_items_seen_next_after_the_recent_items_rank_first_recent_weighing_more():
    histories = [[1, 2, 3], [1, 2, 3], [4, 5], [4, 5], [4, 5], [2, 6]]
    pool = CandidatePool(histories, n_items=8, window=1, recent=2)
    # user's last item 4 (weight 1) -> 5 seen 3 times; item before, 2 (weight 1/2) -> 3 x2, 6 x1
    assert pool.ranked([2, 4], 3) == [5, 3, 6]


def test_the_window_counts_items_a_few_steps_later():
    pool = CandidatePool([[1, 2, 3, 4]], n_items=5, window=2, recent=1)
    assert pool.ranked([1], 2) == [2, 3]  # 4 is three steps after 1: not counted
    assert CandidatePool([[1, 2, 3, 4]], n_items=5, window=1, recent=1).ranked([1], 1) == [2]


def test_never_offers_the_users_own_items_or_padding_and_fills_up_by_popularity():
    histories = [[1, 2], [1, 2], [3, 7], [7], [7], [6]]
    pool = CandidatePool(histories, n_items=7, window=1)
    ranked = pool.ranked([1, 2], 4)
    assert 1 not in ranked and 2 not in ranked and 0 not in ranked
    assert ranked == [7, 3, 6, 4]  # nothing followed 2: popularity (7: 3, then 3 and 6: 1), id


def test_ties_break_by_popularity_then_the_lower_id():
    histories = [[1, 5], [1, 3], [3], [3]]
    pool = CandidatePool(histories, n_items=6, window=1)
    assert pool.ranked([1], 2) == [3, 5]  # both followed 1 once; 3 is more popular


def test_shown_order_shuffles_the_set_and_reads_the_same_each_time():
    items = list(range(10, 30))
    shown = shown_order(items)
    assert sorted(shown) == items and shown != items
    assert shown_order(items) == shown
    assert shown_order(list(reversed(items))) == shown  # the set decides, not its order
    orders = {tuple(shown_order(np.arange(k, k + 20).tolist())[:1]) for k in range(30)}
    assert len(orders) > 10  # the pool's best is not always listed first


def test_the_ranking_equals_a_sort_of_the_whole_catalog_by_score_popularity_and_id():
    rng = np.random.default_rng(0)
    histories = [rng.integers(1, 40, size=rng.integers(2, 12)).tolist() for _ in range(60)]
    pool = CandidatePool(histories, n_items=45, window=3, recent=5)
    for history in histories[:20]:
        score = np.zeros(46)
        for k, item in enumerate(reversed(history[-5:]), start=1):
            for later in range(1, 4):
                for h in histories:
                    for i in range(len(h) - later):
                        score[h[i + later]] += (h[i] == item) / k
        items = [i for i in range(1, 46) if i not in history]
        brute = sorted(items, key=lambda i: (-round(score[i], 9), -pool.popularity[i], i))
        assert pool.ranked(history, 20) == brute[:20]


def test_an_offer_skips_items_whose_titles_read_as_one_already_offered():
    pool = CandidatePool([[1, 2], [1, 2], [1, 3], [1, 4]], n_items=4, window=1)
    assert pool.ranked([1], 3) == [2, 3, 4]
    title = {2: "Same", 3: "Same", 4: "Other"}.get
    assert pool.offer([1], 2, title) == [2, 4]  # a pick of "Same" names item 2 only
    assert pool.offer([1], 5, title) == [2, 4]  # the catalog ran out
