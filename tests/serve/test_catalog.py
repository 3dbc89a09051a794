"""Item references by people: dense ids, original ids, titles; search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from slimrec.data.prepared import PreparedDataset
from slimrec.serve.catalog import Catalog, UnknownItem


@pytest.fixture
def catalog() -> Catalog:
    items = pd.DataFrame(
        {
            "item": [1, 2, 3, 4],
            "raw_id": ["a1", "b2", "c3", "d4"],
            "title": ["Toy Story (1995)", "Heat", "heat", None],
        }
    )
    users = pd.DataFrame({"user": [0, 1], "raw_id": ["196", "7"]})
    seqs = [np.array([1, 2, 3]), np.array([2, 3, 4])]
    return Catalog(PreparedDataset(seqs, items, users, name="t"))


def test_resolve_every_kind_of_reference(catalog):
    assert catalog.resolve(2) == 2
    assert catalog.resolve("c3") == 3
    assert catalog.resolve("toy story (1995)") == 1
    assert catalog.resolve(" 4 ") == 4
    assert catalog.title(4) == "item d4"  # no title: the original id stands in


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (9, "no item with id 9"),
        ("Heat", "names 2 items"),
        ("nothing", "no item with id or title 'nothing'"),
        (True, "not an item id"),
    ],
)
def test_bad_references_say_why(catalog, ref, message):
    with pytest.raises(UnknownItem, match=message):
        catalog.resolve(ref)


def test_search_and_users(catalog):
    assert [it.id for it in catalog.search("HEAT")] == [2, 3]
    assert [it.id for it in catalog.search("toy")] == [1]
    assert len(catalog.search("", limit=2)) == 2
    assert catalog.user_index("196") == 0 and catalog.user_index("nope") is None
    assert catalog.search_users("9") == [(0, "196")]


def test_typed_text_reads_the_original_id_shown_and_titles_may_hold_commas():
    """The id trap: "62" typed where the page shows "(62)" is item 62 of the source data."""
    from slimrec.serve.recommend_cli import split_history

    items = pd.DataFrame(
        {
            "item": [1, 2, 3],
            "raw_id": ["3", "62", "x9"],
            "title": ["Stargate", "Cold Comfort Farm", "Crumb, Robert (1994)"],
        }
    )
    users = pd.DataFrame({"user": [0], "raw_id": ["u"]})
    cat = Catalog(PreparedDataset([np.array([1, 2, 3])], items, users, name="t"))
    assert cat.resolve("62") == 2 and cat.resolve("3") == 1  # original ids win over dense
    assert cat.resolve(3) == 3  # a JSON integer stays a dense id (the API's documented kind)
    assert split_history(["Crumb, Robert (1994)", "62,3"], cat) == [
        "Crumb, Robert (1994)",
        "62",
        "3",
    ]
    assert [cat.resolve(r) for r in split_history(["Crumb, Robert (1994)", "62,3"], cat)] == [
        3,
        2,
        1,
    ]
