"""Loader for your own interaction tables: CSV, TSV, Parquet or JSON Lines (optionally gzipped).

Most private datasets are one table of (user, item, time) rows plus, perhaps, an item
catalog. Column names differ from file to file, so common names are detected and any
name can be mapped explicitly (``--columns user=uid,item=sku,order=ts``). Without an
order column the file order is the sequence order, which is what an event log means.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from slimrec.data.dataset import ITEM_TEXT_FIELDS, RawDataset
from slimrec.data.textclean import clean_text
from slimrec.errors import ConfigError, DataError

FORMATS = ("csv", "tsv", "parquet", "jsonl")

# Accepted mapping keys, normalised to the canonical role they name.
_KEYS = {"user": "user", "user_id": "user", "item": "item", "item_id": "item"}
_KEYS |= {"order": "order", "timestamp": "order", "time": "order"}
_ITEM_KEYS = {"item": "item", "item_id": "item", **{f: f for f in ITEM_TEXT_FIELDS}}

# Common names in public datasets, tried in this order (case-insensitively).
_GUESSES = {
    "user": ("user_id", "userId", "user", "reviewerID", "uid"),
    "item": ("item_id", "itemId", "item", "movieId", "parent_asin", "asin", "iid"),
    "order": ("timestamp", "time", "order", "position", "unixReviewTime", "datetime", "date"),
    "title": ("title", "name"),
    "description": ("description",),
    "brand": ("brand", "store"),
    "categories": ("categories", "category", "genres"),
}


def load_table(
    path: Path,
    *,
    fmt: str,
    columns: dict[str, str] | None = None,
    items_path: str | Path | None = None,
    item_columns: dict[str, str] | None = None,
    encoding: str = "utf-8",
    sep: str | None = None,
) -> RawDataset:
    """Read an interaction table (and optionally an item catalog) into a RawDataset."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown table format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    mapping = _normalise(columns, _KEYS)
    table, found = _read_mapped(path, fmt, mapping, ("user", "item"), ("order",), encoding, sep)
    inter = pd.DataFrame({"user_id": table[found["user"]], "item_id": table[found["item"]]})
    # No time column: the rows are an event log, so their position is the order.
    inter["order"] = _as_order(table[found["order"]]) if "order" in found else np.arange(len(table))

    items = None
    if items_path is not None:
        items_path = Path(items_path)
        items = read_items(items_path, item_columns, encoding=encoding, sep=sep)
    name = path.name.removesuffix(".gz").rsplit(".", 1)[0]
    return RawDataset.from_frames(inter, items, name=name, source=path, items_source=items_path)


def read_items(
    path: Path, item_columns: dict[str, str] | None, *, encoding: str, sep: str | None
) -> pd.DataFrame:
    """An item catalog in any table format (told by its extension), with cleaned text."""
    mapping = _normalise(item_columns, _ITEM_KEYS)
    fmt = format_of(path)
    table, found = _read_mapped(path, fmt, mapping, ("item",), ITEM_TEXT_FIELDS, encoding, sep)
    items = pd.DataFrame({"item_id": table[found["item"]]})
    for field in ITEM_TEXT_FIELDS:
        if field in found:
            items[field] = table[found[field]].map(_text)
    return items


def format_of(path: Path) -> str:
    """The table format a file name implies."""
    name = path.name.lower().removesuffix(".gz")
    for ext, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv"), (".parquet", "parquet")):
        if name.endswith(ext):
            return fmt
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    raise DataError(
        "cannot tell the table format from the file name",
        where=path,
        fix="name it .csv, .tsv, .parquet or .jsonl (optionally .gz)",
    )


def read_frame(
    path: Path,
    fmt: str,
    *,
    encoding: str,
    sep: str | None,
    usecols: list[str] | None = None,
    header_only: bool = False,
) -> pd.DataFrame:
    """Read a table (or just its header); every failure becomes one DataError naming the file.

    JSON Lines has no header, so ``header_only`` reads it whole.
    """
    if not path.is_file():
        raise DataError("no such file", where=path, fix="check the path")
    try:
        if fmt == "parquet":
            if header_only:
                return pd.DataFrame(columns=pq.read_schema(path).names)
            return pd.read_parquet(path, columns=usecols)
        if fmt == "jsonl":
            # dtype=False keeps ids like "007" as text and timestamps as numbers.
            return pd.read_json(path, lines=True, encoding=encoding, dtype=False)
        delimiter = sep or ("\t" if fmt == "tsv" else ",")
        # Ids stay text: numeric parsing would turn "007" into 7. The pyarrow parser
        # refuses a row with more fields than the header, which the C parser accepts
        # silently once usecols is given; it cannot read a header alone.
        return pd.read_csv(
            path,
            sep=delimiter,
            encoding=encoding,
            dtype=str,
            usecols=usecols,
            **({"nrows": 0} if header_only else {"engine": "pyarrow"}),
        )
    except UnicodeDecodeError as e:
        where = _bad_utf8_where(path) if e.encoding.replace("-", "") == "utf8" else f"({e.reason})"
        raise DataError(
            f"not valid {encoding} text {where}",
            where=path,
            fix="pass --encoding latin-1 (or the file's real encoding)",
        ) from e
    except (ValueError, OSError, EOFError, RecursionError) as e:
        if "invalid UTF8" in str(e):  # the pyarrow parser's UnicodeDecodeError
            raise DataError(
                f"not valid {encoding} text {_bad_utf8_where(path)}",
                where=path,
                fix="pass --encoding latin-1 (or the file's real encoding)",
            ) from e
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = " and separator (--sep)" if fmt in ("csv", "tsv") else ""
        raise DataError(
            f"cannot parse as {fmt}: {detail}",
            where=path,
            fix=f"check the file format (--format){hint}",
        ) from e


def _bad_utf8_where(path: Path) -> str:
    # pandas reports offsets inside its read buffer; rescan to name the real line and byte.
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    offset = 0
    with opener(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return f"at line {lineno} (byte {offset + e.start}: {raw[e.start : e.end]!r})"
            offset += len(raw)
    return ""


def _read_mapped(
    path: Path,
    fmt: str,
    mapping: dict[str, str],
    required: tuple[str, ...],
    optional: tuple[str, ...],
    encoding: str,
    sep: str | None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table and its role -> column map; only the used columns of big tables are parsed."""
    head = read_frame(path, fmt, encoding=encoding, sep=sep, header_only=True)
    found = _resolve([str(c) for c in head.columns], mapping, required, optional, path)
    if fmt == "jsonl":
        return head, found
    # Skipping unused columns (review texts, say) saves most of the time and memory.
    usecols = sorted(set(found.values()))
    return read_frame(path, fmt, encoding=encoding, sep=sep, usecols=usecols), found


def _normalise(mapping: dict[str, str] | None, keys: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, column in (mapping or {}).items():
        if key not in keys:
            raise ConfigError(
                f"unknown column mapping key {key!r}",
                fix=f"use {', '.join(sorted(set(keys.values())))}",
            )
        out[keys[key]] = column
    return out


def _resolve(
    columns: list[str],
    mapping: dict[str, str],
    required: tuple[str, ...],
    optional: tuple[str, ...],
    path: Path,
) -> dict[str, str]:
    """Role -> file column, from the mapping or else by common names."""
    lower = {c.lower(): c for c in reversed(columns)}
    found: dict[str, str] = {}
    for role in (*required, *optional):
        if role in mapping:
            if mapping[role] not in columns:
                raise DataError(
                    f"column {mapping[role]!r} (mapped to {role}) not found; found {columns}",
                    where=path,
                    fix="fix the column mapping to use one of the columns found",
                )
            found[role] = mapping[role]
            continue
        guess = next((lower[g.lower()] for g in _GUESSES[role] if g.lower() in lower), None)
        if guess is not None:
            found[role] = guess
        elif role in required:
            raise DataError(
                f"no {role} column (looked for {', '.join(_GUESSES[role])}); found {columns}",
                where=path,
                fix=f"map it, e.g. --columns {role}=<column>",
            )
    return found


def _as_order(col: pd.Series) -> pd.Series:
    if col.dtype.kind != "M":
        numeric = pd.to_numeric(col, errors="coerce")
        if numeric.notna().all():
            return numeric
    # Dates (Parquet timestamps, or text like "2021-03-04 10:00") order as epoch seconds.
    dates = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
    if dates.notna().all():
        return (dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return col  # RawDataset.from_frames reports the first non-numeric value.


def _text(value: object) -> str:
    # Parquet list columns arrive as numpy arrays; clean_text joins lists.
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return clean_text(value)
