"""Loader for the benchmark folder format (``interactions.csv`` + ``items.jsonl``).

This is the format of ``shared/data/amazon-office``: ``interactions.csv`` with columns
``user_id,item_id,position`` (0 = oldest) and ``items.jsonl`` with one object per item
(``item_id, title, description, brand, categories``). It is also the simplest format
to export your own data to.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from slimrec.data.dataset import RawDataset
from slimrec.data.textclean import clean_text
from slimrec.errors import DataError

INTERACTIONS_FILE = "interactions.csv"
ITEMS_FILE = "items.jsonl"


def is_benchmark_folder(path: Path) -> bool:
    return path.is_dir() and (path / INTERACTIONS_FILE).is_file()


def load_benchmark_folder(path: str | Path, *, name: str | None = None) -> RawDataset:
    """Load a folder holding ``interactions.csv`` and (optionally) ``items.jsonl``."""
    path = Path(path)
    inter_path = path / INTERACTIONS_FILE
    if not inter_path.is_file():
        raise DataError(
            f"no {INTERACTIONS_FILE} in this folder",
            where=path,
            fix=f"point --dataset at a folder with {INTERACTIONS_FILE} (+ {ITEMS_FILE})",
        )
    try:
        inter = pd.read_csv(
            inter_path, dtype={"user_id": str, "item_id": str}, encoding="utf-8", engine="pyarrow"
        )
    except UnicodeDecodeError as e:
        raise DataError(
            f"not valid UTF-8 at byte {e.start}", where=inter_path, fix="re-encode as UTF-8"
        ) from e
    except (ValueError, OSError) as e:  # pandas' parser and empty-file errors are ValueErrors
        detail = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise DataError(
            f"cannot parse as CSV: {detail}",
            where=inter_path,
            fix="a header user_id,item_id,position and one row per interaction",
        ) from e
    missing = [c for c in ("user_id", "item_id", "position") if c not in inter.columns]
    if missing:
        raise DataError(
            f"missing column(s) {missing}; found {list(inter.columns)}",
            where=inter_path,
            fix="the header must be user_id,item_id,position",
        )
    inter = inter.rename(columns={"position": "order"})

    items_path = path / ITEMS_FILE
    items = _read_items_jsonl(items_path) if items_path.is_file() else None
    return RawDataset.from_frames(
        inter,
        items,
        name=name or path.name,
        source=inter_path,
        items_source=items_path,
    )


def _read_items_jsonl(path: Path) -> pd.DataFrame:
    rows = []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise DataError(
                    f"line {lineno} is not valid UTF-8 (byte {e.start})",
                    where=path,
                    fix="re-encode the file as UTF-8",
                ) from e
            except json.JSONDecodeError as e:
                raise DataError(
                    f"line {lineno} is not valid JSON ({e.msg})",
                    where=path,
                    fix="one JSON object per line",
                ) from e
            if not isinstance(obj, dict) or "item_id" not in obj:
                raise DataError(
                    f"line {lineno} is not an object with an 'item_id'",
                    where=path,
                    fix='each line must be {"item_id": ..., "title": ..., ...}',
                )
            rows.append(obj)
    items = pd.DataFrame(rows)
    for field in ("title", "description", "brand", "categories"):
        if field in items.columns:
            items[field] = items[field].map(clean_text)
    return items
