"""Step-3 suggestions resolve to catalog items: exact, fuzzy, or not at all."""

from __future__ import annotations

import random

from slimrec.methods.slim.grounding import (
    CatalogIndex,
    grounding,
    most_popular,
    normalize,
    popularity_order,
    suggestion_lines,
)

TITLES = {
    1: "Lion King, The (1994)",
    2: "Sound of Music, The (1965)",
    3: "Scream (1996)",
    4: "Pilot G2 Retractable Gel Pens, Fine Point, Black",
    5: "Scream 2 (1997)",
}


def test_titles_normalise_without_year_article_or_punctuation():
    assert normalize("Lion King, The (1994)") == normalize('"The Lion King"') == "lion king"


def test_suggestions_are_the_list_lines_not_the_echoed_instruction():
    step3 = (
        "Under each of those five, suggest 2 specific movies the user may like next:\n"
        '1. "Scream"\n2. **Lion King, The**\n- Pilot G2 gel pens\n\n'
    )
    assert suggestion_lines(step3) == ["Scream", "Lion King, The", "Pilot G2 gel pens"]


def test_exact_then_fuzzy_then_nothing():
    index = CatalogIndex(TITLES)
    assert index.resolve("The Lion King") == 1
    assert index.resolve("Scream") == 3 and index.resolve("Scream 2") == 5
    assert index.resolve("Pilot G2 Retractable Gel Pens Fine Point Black") == 4
    assert index.resolve("Pilot G2 Retractable Gel Pen, Fine Point, Black") == 4  # fuzzy
    assert index.resolve("Blue notebook") is None and index.resolve("") is None
    assert index.resolve_line("Musicals: Sound of Music, The") == 2


def test_totals_count_grounded_new_and_hits():
    index = CatalogIndex(TITLES)
    step3 = ["1. Scream\n2. The Lion King\n3. A made-up film", "1. Scream 2"]
    result = grounding(step3, histories=[[3], []], next_items=[[1], [4]], index=index)
    assert (result.suggestions, result.grounded, result.new, result.hits) == (4, 3, 2, 1)
    assert result.grounded_share == 0.75 and result.hit_rate == 0.5
    assert result.popular_hits is None and result.popular_hit_rate is None


def test_the_popularity_control_offers_as_many_unseen_popular_items_as_were_grounded():
    index = CatalogIndex(TITLES)
    popular = [3, 1, 5, 2, 4]  # most popular first
    # user 0 grounds 2 distinct items (Scream twice counts once) and has had item 3: the
    # control offers 1 and 5; user 1 grounds none, so the control offers none either.
    step3 = ["1. Scream\n2. Scream\n3. The Lion King", "1. A made-up film"]
    histories, next_items = [[3], []], [[5], [3]]
    result = grounding(step3, histories, next_items, index, popular)
    assert (result.hits, result.popular_hits, result.popular_hit_rate) == (0, 1, 0.5)
    assert most_popular(popular, 2, {3}) == [1, 5] and most_popular(popular, 0, set()) == []


def test_the_pool_control_takes_as_many_of_the_pools_best_offered_candidates_as_were_grounded():
    index = CatalogIndex(TITLES)
    # each user grounds 2 distinct items; the pool ranked what their prompts offered
    step3 = ["1. Scream\n2. The Lion King", "1. Scream\n2. The Lion King"]
    pool = [[4, 5, 1], [2, 4, 5]]  # best first: user 0's next item (5) is its second best
    result = grounding(step3, [[], []], [[5], [5]], index, pool=pool)
    assert (result.hits, result.pool_hits, result.pool_hit_rate) == (0, 1, 0.5)
    assert grounding(step3, [[], []], [[5], [5]], index).pool_hits is None


def test_a_pick_is_the_item_offered_under_that_title_even_a_cut_one():
    index = CatalogIndex(TITLES)
    cut = "Sound of Music, The (19…"  # as a prompt that cut the title showed it
    assert index.resolve(cut) is None
    result = grounding([f"- {cut}"], [[]], [[2]], index, choices=[{cut: 2}])
    assert (result.grounded, result.new, result.hits) == (1, 1, 1)


def test_popularity_order_counts_only_the_training_parts():
    import numpy as np
    import pandas as pd

    from slimrec.data.prepared import PreparedDataset

    items = pd.DataFrame({"item": [1, 2, 3], "raw_id": ["a", "b", "c"], "title": ["A", "B", "C"]})
    # item 3 is every user's validation and test item: popular in what is held out only
    seqs = [np.array(s) for s in ([2, 1, 3, 3], [1, 2, 3, 3], [2, 2, 3, 3])]
    data = PreparedDataset(
        sequences=seqs, items=items, users=pd.DataFrame({"user": [0, 1, 2]}), name="t"
    )
    assert popularity_order(data) == [2, 1, 3]


def test_resolution_does_not_depend_on_the_order_of_a_set(monkeypatch):
    import slimrec.methods.slim.grounding as module

    # "alpha beta" shares one word with each title. Sets of strings iterate in an order
    # each process's hash seed decides; both orders must resolve alike.
    def resolved(order) -> int | None:
        monkeypatch.setattr(module, "set", lambda xs: order(list(dict.fromkeys(xs))),
                            raising=False)  # fmt: skip
        index = CatalogIndex({1: "alpha widget", 2: "beta gadget"}, threshold=0.1)
        return index.resolve("alpha beta")

    assert resolved(list) == resolved(lambda xs: xs[::-1]) == 1


def test_a_fuzzy_match_is_the_most_similar_title_at_the_threshold_as_by_brute_force():
    from difflib import SequenceMatcher

    rng = random.Random(0)
    words = ["star", "wars", "mario", "kart", "edition", "deluxe", "zelda", "quest", "racer"]
    titles = {i: " ".join(rng.choices(words, k=rng.randint(2, 5))) for i in range(1, 400)}
    index = CatalogIndex(titles)
    for _ in range(300):
        name = " ".join(rng.choices(words, k=rng.randint(1, 5)))
        key = normalize(name)
        if key in index.exact:
            continue
        known = [w for w in set(key.split()) if w in index.by_word]
        rare = min(known, key=lambda w: (len(index.by_word.get(w, [])), w))
        scores = [(SequenceMatcher(None, key, index.norm[i]).ratio(), -n, i)
                  for n, i in enumerate(index.by_word.get(rare, []))]  # fmt: skip
        best, _, item = max(scores)  # the first of the best, as a plain scan finds it
        expected = item if best >= index.threshold else None
        assert index.resolve(name) == expected
        assert index.resolve(name) == expected  # and again, from what it remembered
