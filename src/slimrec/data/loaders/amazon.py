"""Loader for the Amazon Reviews dumps (2014, 2018 and 2023 releases) used by SLIM's paper.

Each release is a reviews file (one record per line) plus a ``meta_*`` catalog file.
They differ in keys (``reviewerID``/``asin`` vs ``user_id``/``parent_asin``) and in syntax:
the 2014 meta lines are Python literals, not JSON, so every line is tried as JSON first
and then with :func:`ast.literal_eval` (never ``eval``). Files run to millions of lines,
so they are streamed into lists of tuples and turned into one DataFrame at the end.
"""

from __future__ import annotations

import ast
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from slimrec.data.dataset import RawDataset
from slimrec.data.textclean import clean_text
from slimrec.errors import DataError
from slimrec.progress import progress

_EXTENSIONS = (".json", ".json.gz", ".jsonl", ".jsonl.gz")
# (user, item, time) keys: 2023 first, since its records also carry a per-variant `asin`.
_REVIEW_KEYS = (("user_id", "parent_asin", "timestamp"), ("reviewerID", "asin", "unixReviewTime"))


def load_amazon(reviews_path: Path, meta_path: str | Path | None) -> RawDataset:
    """Load Amazon reviews (file or folder) and, when found, the matching meta catalog."""
    reviews_path = Path(reviews_path)
    if reviews_path.is_dir():
        reviews_path, found_meta = _files_in_folder(reviews_path)
    elif reviews_path.is_file():
        found_meta = _sibling_meta(reviews_path)
    else:
        raise DataError("no such file or folder", where=reviews_path, fix="check the path")
    meta = Path(meta_path) if meta_path is not None else found_meta
    if meta is not None and not meta.is_file():
        raise DataError("no such meta file", where=meta, fix="check the --items path")
    inter = read_reviews(reviews_path)
    items = read_meta(meta) if meta is not None else None
    return RawDataset.from_frames(
        inter, items, name=_category(reviews_path), source=reviews_path, items_source=meta
    )


def read_reviews(path: Path) -> pd.DataFrame:
    """Interactions from a reviews file: one (user, item, time) row per review."""
    rows: list[tuple[str, str, int]] = []
    keys: tuple[str, str, str] | None = None
    for lineno, obj in _records(path):
        if keys is None:
            keys = next((k for k in _REVIEW_KEYS if all(x in obj for x in k)), None)
            if keys is None:
                raise DataError(
                    f"line {lineno} lacks reviewer/item/time keys "
                    f"({' or '.join('/'.join(k) for k in _REVIEW_KEYS)}); found {sorted(obj)}",
                    where=path,
                    fix="give an Amazon reviews file (2014, 2018 or 2023 release)",
                )
        try:
            rows.append((obj[keys[0]], obj[keys[1]], obj[keys[2]]))
        except KeyError as e:
            raise DataError(
                f"line {lineno} lacks key {e.args[0]!r}", where=path, fix="remove the broken line"
            ) from e
    if not rows:
        raise DataError("no reviews in this file", where=path, fix="give a non-empty reviews file")
    return pd.DataFrame(rows, columns=["user_id", "item_id", "order"])


def read_meta(path: Path) -> pd.DataFrame:
    """The item catalog from a meta file, text cleaned of HTML; first record per item wins."""
    items: dict[str, tuple[str, str, str, str]] = {}
    for lineno, obj in _records(path):
        item = obj.get("parent_asin") or obj.get("asin")
        if not item:
            raise DataError(
                f"line {lineno} has no 'asin' or 'parent_asin'",
                where=path,
                fix="give an Amazon meta file",
            )
        # The 2018 meta files repeat some asins; a catalog needs one row per item.
        if item not in items:
            items[item] = (
                clean_text(obj.get("title")),
                clean_text(obj.get("description")),
                clean_text(obj.get("brand") or obj.get("store") or _detail_brand(obj)),
                _categories(obj.get("categories", obj.get("category"))),
            )
    columns = ["title", "description", "brand", "categories"]
    frame = pd.DataFrame(list(items.values()), columns=columns)
    frame.insert(0, "item_id", list(items))
    return frame


def _records(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each non-blank line, JSON or Python-literal dict."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(progress(f, desc=path.name, unit=" lines"), 1):
                if raw.strip():
                    yield lineno, _parse_line(raw, lineno, path)
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read: {e}", where=path, fix="check the file (gzip?)") from e


def _parse_line(raw: bytes, lineno: int, path: Path) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"line {lineno} is not valid UTF-8 (byte {e.start}: {raw[e.start : e.end]!r})",
            where=path,
            fix="re-encode the file as UTF-8",
        ) from e
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        try:
            # 2014 meta lines are Python dict literals (single quotes); literal_eval is safe.
            obj = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            obj = None
    if not isinstance(obj, dict):
        raise DataError(
            f"line {lineno} is not a JSON object or Python dict: {text.strip()[:60]!r}",
            where=path,
            fix="remove or repair the broken line",
        )
    return obj


def _categories(value: object) -> str:
    # 2014: list of category paths (list of lists); 2018/2023: one flat list.
    flat: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop(0)
        if isinstance(v, (list, tuple)):
            stack[:0] = list(v)
        elif (text := clean_text(v)) and text not in flat:
            flat.append(text)
    return ", ".join(flat)


def _detail_brand(obj: dict) -> str | None:
    details = obj.get("details")
    if isinstance(details, dict):
        return details.get("Brand") or details.get("Manufacturer")
    return None


def _files_in_folder(folder: Path) -> tuple[Path, Path | None]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and _is_amazon_file(p))
    metas = [p for p in files if p.name.startswith("meta_")]
    reviews = [p for p in files if not p.name.startswith("meta_")]
    if len(reviews) != 1 or len(metas) > 1:
        raise DataError(
            f"expected one reviews file and at most one meta_* file, found "
            f"{[p.name for p in files]}",
            where=folder,
            fix="point --dataset at the reviews file and --items at the meta file",
        )
    return reviews[0], (metas[0] if metas else None)


def _sibling_meta(reviews: Path) -> Path | None:
    """meta_<Category>.* beside the reviews file, else the only meta_* file there."""
    if reviews.name.startswith("meta_"):
        return None
    siblings = sorted(
        p for p in reviews.parent.glob("meta_*") if p.is_file() and _is_amazon_file(p)
    )
    wanted = "meta_" + _category(reviews)
    match = [p for p in siblings if _stem(p) == wanted]
    if match:
        return match[0]
    return siblings[0] if len(siblings) == 1 else None


def _is_amazon_file(path: Path) -> bool:
    return path.name.lower().endswith(_EXTENSIONS)


def _stem(path: Path) -> str:
    name = path.name
    for ext in sorted(_EXTENSIONS, key=len, reverse=True):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _category(reviews: Path) -> str:
    # reviews_Office_Products_5.json.gz (2014), Office_Products_5.json.gz (2018) and
    # Office_Products.jsonl.gz (2023) all name the category Office_Products.
    return _stem(reviews).removeprefix("reviews_").removesuffix("_5")
