"""Loader registry: a :class:`DataSource` in, a :class:`~slimrec.data.RawDataset` out.

``LOADERS`` maps a format name to its loader; ``format: auto`` picks one by looking at
the path (an embedded name, a benchmark folder, MovieLens files, Amazon records, or a
table by extension).
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slimrec.data.dataset import RawDataset
from slimrec.data.loaders.amazon import load_amazon
from slimrec.data.loaders.benchmark import is_benchmark_folder, load_benchmark_folder
from slimrec.data.loaders.embedded import EMBEDDED, load_embedded
from slimrec.data.loaders.generic import load_table
from slimrec.data.loaders.movielens import detect_movielens, load_movielens
from slimrec.data.loaders.recbole import inter_file, load_recbole
from slimrec.errors import DataError

Format = Literal[
    "auto",
    "embedded",
    "benchmark",
    "recbole",
    "movielens",
    "amazon",
    "csv",
    "tsv",
    "parquet",
    "jsonl",
]

# Benchmarks that live in the shared data folder beside the repository, by name.
SHARED_BENCHMARKS = ("amazon-office", "amazon-games")


class DataSource(BaseModel):
    """Where the raw data is and how to read it."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        "ml-100k",
        description="An embedded name (ml-100k, ml-1m), a shared benchmark (amazon-office, "
        "amazon-games), or a path to a folder, zip or file.",
    )
    format: Format = Field("auto", description="How to read `dataset`; auto detects it.")
    items: str | None = Field(
        None, description="Item catalog file (generic formats) or Amazon meta file."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Interaction column mapping for generic files: user=..., item=..., order=...",
    )
    item_columns: dict[str, str] = Field(
        default_factory=dict,
        description="Catalog column mapping: item=..., title=..., description=..., brand=..., "
        "categories=...",
    )
    encoding: str = Field("utf-8", description="Text encoding of generic files.")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, name: str) -> str:
        try:
            codecs.lookup(name)
        except LookupError as e:
            raise ValueError(f"unknown text encoding {name!r} (e.g. utf-8, latin-1, cp1252)") from e
        return name

    sep: str | None = Field(
        None, description="Field separator of CSV files (default by extension)."
    )


def _generic(fmt: str) -> Callable[[DataSource], RawDataset]:
    def load(src: DataSource) -> RawDataset:
        return load_table(
            _existing(src.dataset),
            fmt=fmt,
            columns=src.columns or None,
            items_path=src.items,
            item_columns=src.item_columns or None,
            encoding=src.encoding,
            sep=src.sep,
        )

    return load


LOADERS: dict[str, Callable[[DataSource], RawDataset]] = {
    "embedded": lambda src: load_embedded(src.dataset),
    "benchmark": lambda src: load_benchmark_folder(resolve_path(src.dataset)),
    "recbole": lambda src: load_recbole(_existing(src.dataset)),
    "movielens": lambda src: load_movielens(_existing(src.dataset)),
    "amazon": lambda src: load_amazon(_existing(src.dataset), src.items),
    "csv": _generic("csv"),
    "tsv": _generic("tsv"),
    "parquet": _generic("parquet"),
    "jsonl": _generic("jsonl"),
}


def load_dataset(src: DataSource) -> RawDataset:
    """Load ``src`` with the loader its format names, detecting the format when ``auto``."""
    fmt = detect_format(src) if src.format == "auto" else src.format
    return LOADERS[fmt](src)


def detect_format(src: DataSource) -> str:
    if src.dataset in EMBEDDED:
        return "embedded"
    path = resolve_path(src.dataset)
    if is_benchmark_folder(path):
        return "benchmark"
    if inter_file(path) is not None:
        return "recbole"
    if detect_movielens(path) is not None:
        return "movielens"
    if _looks_like_amazon(path):
        return "amazon"
    if path.is_file():
        name = path.name.lower().removesuffix(".gz")
        for ext, fmt in (
            (".csv", "csv"),
            (".tsv", "tsv"),
            (".tab", "tsv"),
            (".parquet", "parquet"),
        ):
            if name.endswith(ext):
                return fmt
        if name.endswith((".jsonl", ".json")):
            return "jsonl"
    raise DataError(
        "cannot tell the format of this dataset",
        where=path,
        fix="pass --format benchmark|recbole|movielens|amazon|csv|tsv|parquet|jsonl",
    )


def resolve_path(dataset: str) -> Path:
    """A path as given, or a shared benchmark's folder found by name.

    Shared benchmarks are looked up in ``$SLIMREC_DATA_DIR``, then ``shared/data`` beside
    the working directory and beside the repository checkout.
    """
    path = Path(dataset).expanduser()
    if path.exists() or dataset not in SHARED_BENCHMARKS:
        return _existing(dataset)
    roots = []
    if os.environ.get("SLIMREC_DATA_DIR"):
        roots.append(Path(os.environ["SLIMREC_DATA_DIR"]))
    here = Path.cwd().resolve()
    repo = Path(__file__).resolve().parents[4]
    for base in (here, *here.parents[:2], repo, repo.parent):
        roots += [base / "shared" / "data"]
    for root in roots:
        if (root / dataset).is_dir():
            return root / dataset
    raise DataError(
        f"shared benchmark {dataset!r} not found (looked in {', '.join(map(str, roots[:3]))}, ...)",
        fix="set SLIMREC_DATA_DIR to the folder that holds it, or pass its path",
    )


def _existing(dataset: str) -> Path:
    path = Path(dataset).expanduser()
    if not path.exists():
        raise DataError(
            "no such file or folder",
            where=path,
            fix=f"give a path, an embedded name ({', '.join(EMBEDDED)}) or a shared benchmark "
            f"({', '.join(SHARED_BENCHMARKS)})",
        )
    return path


def _looks_like_amazon(path: Path) -> bool:
    if path.is_dir():
        return any(p.name.startswith("meta_") for p in path.iterdir())
    name = path.name.lower()
    if not name.endswith((".json", ".json.gz", ".jsonl", ".jsonl.gz")):
        return False
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            first = json.loads(f.readline())
    except (OSError, ValueError, EOFError, RecursionError):
        return False
    return isinstance(first, dict) and ("reviewerID" in first or "parent_asin" in first)


__all__ = ["LOADERS", "DataSource", "load_dataset"]
