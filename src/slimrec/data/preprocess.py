"""Preprocessing: a :class:`RawDataset` in, a :class:`PreparedDataset` out.

The steps, in order, are those of the sequential-recommendation literature (SASRec,
RecBole, the SLIM paper's Amazon setup), and every one is a recorded option:

1. interactions naming items absent from the catalog are dropped (with a count) or fail;
2. each user's interactions are stably sorted by ``order`` (ties keep file order);
3. optionally, consecutive repeats of the same item are collapsed;
4. optionally, a seeded subsample of users is kept;
5. optionally, sequences are cut to their most recent ``max_seq_len`` items;
6. iterative k-core filtering on users and items, together with ``min_seq_len``, until
   nothing changes (dropping an item can push a user below the threshold and back);
7. dense remapping: users ``0..U-1``, items ``1..N`` (``0`` is padding), in a stable
   order (numeric when every id is an integer, else lexicographic).

Nothing here is random except the user subsample, which is seeded.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from slimrec.data.dataset import RawDataset
from slimrec.data.prepared import PreparedDataset
from slimrec.errors import DataError


class PrepareConfig(BaseModel):
    """Options of :func:`prepare`; stored verbatim in the prepared dataset's manifest."""

    model_config = ConfigDict(extra="forbid")

    user_core: int = Field(
        5, ge=0, description="Keep users with at least this many interactions (k-core)."
    )
    item_core: int = Field(
        5, ge=0, description="Keep items with at least this many interactions (k-core)."
    )
    drop_consecutive_repeats: bool = Field(
        False, description="Collapse runs of the same item in a user's sequence into one."
    )
    min_seq_len: int = Field(
        3, ge=3, description="Shortest sequence kept; 3 leaves one training item after the split."
    )
    max_seq_len: int | None = Field(
        None, ge=3, description="Keep only each user's most recent N interactions (before k-core)."
    )
    max_users: int | None = Field(
        None, ge=1, description="Keep a seeded random subset of this many users (before k-core)."
    )
    missing_items: Literal["drop", "fail"] = Field(
        "drop", description="Interactions with items absent from the catalog: drop them, or fail."
    )
    seed: int = Field(0, description="Seed of the user subsample.")


def prepare(raw: RawDataset, config: PrepareConfig | None = None) -> PreparedDataset:
    """Run every preprocessing step on ``raw`` and return the prepared dataset."""
    config = config or PrepareConfig()
    log: dict[str, int] = {}
    inter = raw.interactions

    catalog = set(raw.items["item_id"])
    absent = ~inter["item_id"].isin(catalog)
    log["dropped_missing_items"] = int(absent.sum())
    if absent.any() and config.missing_items == "fail":
        example = inter.loc[absent, "item_id"].iloc[0]
        raise DataError(
            f"{int(absent.sum())} interactions name items absent from the item catalog "
            f"(e.g. {example!r})",
            where=raw.source,
            fix="add them to the catalog, or use --missing-items drop",
        )
    inter = inter.loc[~absent]
    if inter.empty:  # every interaction named an item the catalog lacks: ids that differ
        raise DataError(
            "no interaction names an item of the item catalog",
            where=raw.source,
            fix="check that the catalog's item ids are the interactions' (map them with "
            "--item-columns item=...)",
        )

    # mergesort is stable: equal timestamps keep the order they had in the file.
    inter = inter.sort_values(["user_id", "order"], kind="mergesort").reset_index(drop=True)

    if config.drop_consecutive_repeats:
        same_user = inter["user_id"].eq(inter["user_id"].shift())
        repeat = same_user & inter["item_id"].eq(inter["item_id"].shift())
        log["dropped_consecutive_repeats"] = int(repeat.sum())
        inter = inter.loc[~repeat]

    if config.max_users is not None:
        users = np.sort(inter["user_id"].unique())
        if len(users) > config.max_users:
            rng = np.random.default_rng(config.seed)
            keep = rng.choice(users, size=config.max_users, replace=False)
            inter = inter.loc[inter["user_id"].isin(set(keep))]

    if config.max_seq_len is not None:
        from_end = inter.groupby("user_id", sort=False).cumcount(ascending=False)
        log["dropped_by_max_seq_len"] = int((from_end >= config.max_seq_len).sum())
        inter = inter.loc[from_end < config.max_seq_len]

    inter, rounds = _k_core(inter, max(config.user_core, config.min_seq_len), config.item_core)
    log["k_core_rounds"] = rounds
    if inter.empty:
        raise DataError(
            f"no interactions left after filtering (user_core={config.user_core}, "
            f"item_core={config.item_core}, min_seq_len={config.min_seq_len})",
            where=raw.source,
            fix="lower --user-core / --item-core / --min-seq-len",
        )

    user_ids = _stable_unique(inter["user_id"])
    item_ids = _stable_unique(inter["item_id"])
    user_index = pd.Series(np.arange(len(user_ids)), index=user_ids)
    item_index = pd.Series(np.arange(1, len(item_ids) + 1), index=item_ids)
    # Re-sort by dense user id so sequences come out in user order; stable keeps time order.
    frame = pd.DataFrame(
        {
            "user": user_index.loc[inter["user_id"]].to_numpy(),
            "item": item_index.loc[inter["item_id"]].to_numpy(),
        }
    ).sort_values("user", kind="mergesort")
    counts = np.bincount(frame["user"].to_numpy(), minlength=len(user_ids))
    sequences = np.split(frame["item"].to_numpy().astype(np.int64), np.cumsum(counts)[:-1])

    items = raw.items.set_index("item_id").loc[item_ids].reset_index()
    items.insert(0, "item", np.arange(1, len(item_ids) + 1))
    items = items.rename(columns={"item_id": "raw_id"})
    users = pd.DataFrame({"user": np.arange(len(user_ids)), "raw_id": user_ids})
    return PreparedDataset(
        sequences=sequences,
        items=items,
        users=users,
        name=raw.name,
        raw_stats=raw.stats(),
        options=config.model_dump(),
        log=log,
    )


def _k_core(inter: pd.DataFrame, user_min: int, item_min: int) -> tuple[pd.DataFrame, int]:
    """Drop users/items below their thresholds until a fixed point; returns rounds taken."""
    rounds = 0
    while True:
        rounds += 1
        user_n = inter.groupby("user_id", sort=False)["item_id"].transform("size")
        item_n = inter.groupby("item_id", sort=False)["user_id"].transform("size")
        keep = (user_n >= user_min) & (item_n >= item_min)
        if keep.all():
            return inter, rounds
        inter = inter.loc[keep]


def _stable_unique(ids: pd.Series) -> np.ndarray:
    """Unique ids, numerically sorted when all are integers (so "10" follows "9")."""
    unique = ids.unique()
    numeric = pd.to_numeric(pd.Series(unique), errors="coerce")
    if not numeric.isna().any() and (numeric % 1 == 0).all():
        return unique[np.argsort(numeric.to_numpy(), kind="stable")]
    return np.sort(unique)
