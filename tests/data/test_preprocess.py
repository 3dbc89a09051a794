"""Preprocessing: k-core, repeats, lengths, remapping, splits, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from slimrec.data import PrepareConfig, RawDataset, prepare
from slimrec.errors import DataError


def raw_from(rows: list[tuple[str, str, float]], items: list[str] | None = None) -> RawDataset:
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "order"])
    cat = None if items is None else pd.DataFrame({"item_id": items, "title": items})
    return RawDataset.from_frames(inter, cat, name="toy", source="toy.csv")


def no_core(**kw) -> PrepareConfig:
    return PrepareConfig(user_core=0, item_core=0, **kw)


def test_sorts_by_order_stably_and_remaps_densely():
    raw = raw_from(
        [
            ("u2", "b", 5),
            ("u1", "c", 2),
            ("u1", "a", 1),
            ("u1", "b", 2),
            ("u2", "a", 1),
            ("u2", "c", 9),
        ]
    )
    p = prepare(raw, no_core())
    assert list(p.users["raw_id"]) == ["u1", "u2"]
    assert list(p.items["raw_id"]) == ["a", "b", "c"]
    assert list(p.items["item"]) == [1, 2, 3]  # 0 is padding
    # u1: a(1), then c and b tie at 2 and keep file order (c first).
    assert p.sequences[0].tolist() == [1, 3, 2]
    assert p.sequences[1].tolist() == [1, 2, 3]


def test_numeric_ids_are_sorted_numerically():
    raw = raw_from([("1", "10", 0), ("1", "9", 1), ("1", "100", 2)])
    p = prepare(raw, no_core())
    assert list(p.items["raw_id"]) == ["9", "10", "100"]


def test_iterative_k_core_reaches_a_fixed_point():
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{rng.zipf(1.6) % 60}", t)
        for u in range(120)
        for t in range(rng.integers(1, 15))
    ]
    p = prepare(raw_from(rows), PrepareConfig(user_core=5, item_core=5))
    seqs = p.sequences
    assert min(len(s) for s in seqs) >= 5
    counts = np.bincount(np.concatenate(seqs), minlength=p.n_items + 1)[1:]
    assert counts.min() >= 5
    assert p.log["k_core_rounds"] >= 2
    # Brute force: repeat single passes until stable; the result must be identical.
    df = pd.DataFrame(rows, columns=["u", "i", "t"])
    while True:
        keep = (df.groupby("u")["i"].transform("size") >= 5) & (
            df.groupby("i")["u"].transform("size") >= 5
        )
        if keep.all():
            break
        df = df[keep]
    assert sum(len(s) for s in seqs) == len(df)
    assert p.n_users == df["u"].nunique() and p.n_items == df["i"].nunique()


def test_consecutive_repeats_dropped_only_when_asked():
    rows = [("u", "a", 0), ("u", "a", 1), ("u", "b", 2), ("u", "a", 3), ("u", "c", 4)]
    kept = prepare(raw_from(rows), no_core())
    assert kept.sequences[0].tolist() == [1, 1, 2, 1, 3]
    dropped = prepare(raw_from(rows), no_core(drop_consecutive_repeats=True))
    assert dropped.sequences[0].tolist() == [1, 2, 1, 3]
    assert dropped.log["dropped_consecutive_repeats"] == 1


def test_max_seq_len_keeps_most_recent_and_min_len_drops_short_users():
    rows = [("u", f"i{t}", t) for t in range(10)] + [("v", "i0", 0), ("v", "i1", 1)]
    p = prepare(raw_from(rows), no_core(max_seq_len=4, min_seq_len=3))
    assert p.n_users == 1
    assert p.items.set_index("item").loc[p.sequences[0], "raw_id"].tolist() == [
        "i6",
        "i7",
        "i8",
        "i9",
    ]


def test_missing_items_drop_with_count_or_fail():
    rows = [("u", "a", 0), ("u", "ghost", 1), ("u", "b", 2), ("u", "c", 3)]
    p = prepare(raw_from(rows, items=["a", "b", "c"]), no_core())
    assert p.log["dropped_missing_items"] == 1 and len(p.sequences[0]) == 3
    with pytest.raises(DataError) as e:
        prepare(raw_from(rows, items=["a", "b", "c"]), no_core(missing_items="fail"))
    assert "ghost" in str(e.value) and "toy.csv" in str(e.value) and "\n" not in str(e.value)


def test_empty_after_filtering_is_a_clear_error():
    rows = [("u", "a", 0), ("u", "b", 1), ("u", "c", 2)]
    with pytest.raises(DataError, match="no interactions left after filtering"):
        prepare(raw_from(rows), PrepareConfig(user_core=5, item_core=5))


def test_subsample_is_seeded_and_deterministic():
    rows = [(f"u{u}", f"i{(u + t) % 7}", t) for u in range(50) for t in range(6)]
    a = prepare(raw_from(rows), no_core(max_users=10, seed=1))
    b = prepare(raw_from(rows), no_core(max_users=10, seed=1))
    c = prepare(raw_from(rows), no_core(max_users=10, seed=2))
    assert a.n_users == 10
    assert a.users["raw_id"].tolist() == b.users["raw_id"].tolist()
    assert a.users["raw_id"].tolist() != c.users["raw_id"].tolist()


def test_leave_one_out_split():
    rows = [("u", x, t) for t, x in enumerate("abcde")]
    p = prepare(raw_from(rows), no_core())
    train, _ = p.split("train")
    valid_h, valid_t = p.split("valid")
    test_h, test_t = p.split("test")
    assert train[0].tolist() == [1, 2, 3]
    assert valid_h[0].tolist() == [1, 2, 3] and valid_t.tolist() == [4]
    assert test_h[0].tolist() == [1, 2, 3, 4] and test_t.tolist() == [5]
    assert p.item_popularity("train").tolist() == [0, 1, 1, 1, 0, 0]
