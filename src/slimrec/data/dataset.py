"""The one canonical in-memory dataset: ordered interactions plus an item catalog.

Every loader (Amazon, MovieLens, generic files, the embedded default) produces a
:class:`RawDataset`; preprocessing turns it into a :class:`~slimrec.data.prepared.PreparedDataset`.
Ids are kept as strings until preprocessing remaps them densely, so loaders never have
to agree on id types.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from slimrec.errors import DataError

INTERACTION_COLUMNS = ("user_id", "item_id", "order")
ITEM_TEXT_FIELDS = ("title", "description", "brand", "categories")
ITEM_COLUMNS = ("item_id", *ITEM_TEXT_FIELDS)


@dataclass
class RawDataset:
    """Interactions (``user_id``, ``item_id``, ``order``) and items (``item_id`` + text).

    ``order`` is a timestamp or a position; rows with equal ``order`` for one user keep
    their file order. Missing item text is the empty string, never NaN.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    name: str
    source: str

    @classmethod
    def from_frames(
        cls,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None,
        *,
        name: str,
        source: str | Path,
        items_source: str | Path | None = None,
    ) -> RawDataset:
        """Validate and normalise loader output into the canonical column types."""
        source = str(source)
        missing = [c for c in INTERACTION_COLUMNS if c not in interactions.columns]
        if missing:
            raise DataError(
                f"interactions lack column(s) {missing}; found {list(interactions.columns)}",
                where=source,
                fix="map your column names with --columns user=...,item=...,order=...",
            )
        inter = interactions.loc[:, list(INTERACTION_COLUMNS)].copy()
        if inter.empty:
            raise DataError(
                "no interactions in the file", where=source, fix="give a file with interactions"
            )
        if inter[["user_id", "item_id"]].isna().any().any():
            bad = int(inter[["user_id", "item_id"]].isna().any(axis=1).to_numpy().argmax())
            raise DataError(
                f"empty user or item id in interaction row {bad}",
                where=source,
                fix="remove rows without ids",
            )
        inter["user_id"] = _as_id(inter["user_id"])
        inter["item_id"] = _as_id(inter["item_id"])
        order = pd.to_numeric(inter["order"], errors="coerce")
        if order.isna().any():
            bad = int(order.isna().to_numpy().argmax())
            raise DataError(
                f"column 'order' (timestamp or position) is not numeric at row {bad}: "
                f"{interactions['order'].iloc[bad]!r}",
                where=source,
                fix="give a numeric timestamp/position column",
            )
        inter["order"] = (
            order.astype("float64") if order.dtype.kind == "f" else order.astype("int64")
        )
        inter = inter.reset_index(drop=True)

        items_where = str(items_source) if items_source is not None else source
        if items is None:
            items = pd.DataFrame({"item_id": pd.unique(inter["item_id"])})
        if "item_id" not in items.columns:
            raise DataError(
                f"item catalog lacks column 'item_id'; found {list(items.columns)}",
                where=items_where,
                fix="map the catalog's id column with --item-columns item=...",
            )
        cat = items.copy()
        cat["item_id"] = _as_id(cat["item_id"])
        for field in ITEM_TEXT_FIELDS:
            if field not in cat.columns:
                cat[field] = ""
            cat[field] = cat[field].map(_as_text).astype(str)
        cat = cat.loc[:, list(ITEM_COLUMNS)].reset_index(drop=True)
        dup = cat["item_id"].duplicated()
        if dup.any():
            first = cat.loc[dup, "item_id"].iloc[0]
            raise DataError(
                f"duplicate item id {first!r} in the item catalog ({int(dup.sum())} duplicates)",
                where=items_where,
                fix="keep one row per item id",
            )
        return cls(interactions=inter, items=cat, name=name, source=source)

    def stats(self) -> dict[str, int | float]:
        """Counts of the raw data, before any filtering."""
        n_inter = len(self.interactions)
        n_users = int(self.interactions["user_id"].nunique())
        n_items_used = int(self.interactions["item_id"].nunique())
        return {
            "users": n_users,
            "items": n_items_used,
            "catalog_items": len(self.items),
            "interactions": n_inter,
            "mean_sequence_length": round(n_inter / n_users, 3) if n_users else 0.0,
            "density": round(n_inter / (n_users * n_items_used), 6) if n_users else 0.0,
        }


def _as_id(col: pd.Series) -> pd.Series:
    # Integral floats (e.g. from a CSV with NaNs elsewhere) must not become "12.0".
    if col.dtype.kind == "f" and np.all(np.mod(col.to_numpy(), 1) == 0):
        col = col.astype("int64")
    return col.astype(str).str.strip()


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    if isinstance(value, (list, tuple)):
        # Amazon categories: lists (of lists) of strings, flattened and deduplicated.
        flat: list[str] = []
        for v in value:
            for s in v if isinstance(v, (list, tuple)) else [v]:
                s = _as_text(s)
                if s and s not in flat:
                    flat.append(s)
        return ", ".join(flat)
    return str(value).strip()
