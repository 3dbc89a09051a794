"""Loader for the official MovieLens downloads: 100K, 1M and latest(-small).

Accepts the zip exactly as GroupLens serves it (members are read with :mod:`zipfile`,
nothing is extracted) or an unpacked folder, possibly one level up from the files
(``data/ml-1m/ratings.dat``). Every rating is an interaction (implicit feedback) ordered
by its timestamp; movies become items titled by name with their genres as categories
and their release year as a short description.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd

from slimrec.data.dataset import RawDataset
from slimrec.errors import DataError

# Variant -> (ratings file, movies file); the ratings file alone identifies the variant
# except for "latest", whose generic ratings.csv also needs movies.csv beside it.
_VARIANTS = {
    "100k": ("u.data", "u.item"),
    "1m": ("ratings.dat", "movies.dat"),
    "latest": ("ratings.csv", "movies.csv"),
}
GENRES_100K = [
    *("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime"),
    *("Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery"),
    *("Romance", "Sci-Fi", "Thriller", "War", "Western"),
]
_TITLE_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_DATE_YEAR = re.compile(r"(\d{4})\s*$")


@dataclass
class _Files:
    """The MovieLens files of one variant, in a folder or inside a zip."""

    variant: str
    root: Path
    members: dict[str, str]  # file name -> path inside the folder or zip member name
    is_zip: bool

    def has(self, name: str) -> bool:
        return name in self.members

    def where(self, name: str) -> str:
        return f"{self.root}!{self.members[name]}" if self.is_zip else self.members[name]

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        if self.is_zip:
            with zipfile.ZipFile(self.root) as zf, zf.open(self.members[name]) as f:
                yield f
        else:
            with open(self.members[name], "rb") as f:
                yield f


def detect_movielens(path: Path) -> str | None:
    """ "100k", "1m" or "latest" when ``path`` holds MovieLens files, else None."""
    files = _locate(Path(path))
    return files.variant if files else None


def load_movielens(path: Path) -> RawDataset:
    """Ratings (as implicit interactions) and movies from a MovieLens zip or folder."""
    path = Path(path)
    files = _locate(path)
    if files is None:
        raise DataError(
            "no MovieLens files here (u.data, ratings.dat, or ratings.csv + movies.csv)",
            where=path,
            fix="give the ml-100k/ml-1m/ml-latest-small zip or its unpacked folder",
        )
    ratings_name, movies_name = _VARIANTS[files.variant]
    inter = _read(files, ratings_name, _RATINGS[files.variant])
    items = _read(files, movies_name, _MOVIES[files.variant]) if files.has(movies_name) else None
    name = path.name.removesuffix(".zip") if path.name.startswith("ml-") else "ml-" + files.variant
    return RawDataset.from_frames(
        inter,
        items,
        name=name,
        source=files.where(ratings_name),
        items_source=files.where(movies_name) if items is not None else None,
    )


def _locate(path: Path) -> _Files | None:
    if path.is_file():
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
        folders: dict[str, dict[str, str]] = {}
        for member in names:
            folder, _, base = member.rpartition("/")
            folders.setdefault(folder, {})[base] = member
        # Shallowest folder first: the official zips hold one folder (ml-1m/...).
        ordered = sorted(folders.items(), key=lambda kv: (kv[0].count("/") + bool(kv[0]), kv[0]))
        return _pick(path, [members for _, members in ordered], is_zip=True)
    if path.is_dir():
        dirs = [path, *sorted(p for p in path.iterdir() if p.is_dir())]
        listings = [{p.name: str(p) for p in d.iterdir() if p.is_file()} for d in dirs]
        return _pick(path, listings, is_zip=False)
    return None


def _pick(root: Path, listings: list[dict[str, str]], *, is_zip: bool) -> _Files | None:
    for members in listings:
        for variant, (ratings, movies) in _VARIANTS.items():
            if ratings in members and (variant != "latest" or movies in members):
                return _Files(variant, root, members, is_zip)
    return None


def _read(files: _Files, name: str, parse) -> pd.DataFrame:
    try:
        with files.open(name) as f:
            return parse(files, f)
    except UnicodeDecodeError as e:
        raise DataError(
            f"not valid UTF-8 (byte {e.start})", where=files.where(name), fix="re-download it"
        ) from e
    except (ValueError, KeyError, IndexError, OSError, zipfile.BadZipFile) as e:
        raise DataError(
            f"cannot parse: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
            where=files.where(name),
            fix="re-download the official MovieLens file",
        ) from e


def _table(f: IO[bytes], sep: str, names: list[str], encoding: str) -> pd.DataFrame:
    return pd.read_csv(
        f, sep=sep, header=None, names=names, dtype=str, encoding=encoding, quoting=csv.QUOTE_NONE
    )


def _double_colon(f: IO[bytes]) -> IO[bytes]:
    # "::" is a multi-character separator (slow python engine); a tab never occurs in 1M.
    return io.BytesIO(f.read().replace(b"::", b"\t"))


def _ratings_100k(_: _Files, f: IO[bytes]) -> pd.DataFrame:
    return _table(f, "\t", ["user_id", "item_id", "rating", "order"], "latin-1")


def _ratings_1m(_: _Files, f: IO[bytes]) -> pd.DataFrame:
    return _table(_double_colon(f), "\t", ["user_id", "item_id", "rating", "order"], "latin-1")


def _ratings_latest(_: _Files, f: IO[bytes]) -> pd.DataFrame:
    df = pd.read_csv(f, dtype=str, encoding="utf-8")
    return df.rename(columns={"userId": "user_id", "movieId": "item_id", "timestamp": "order"})


def _movies_100k(files: _Files, f: IO[bytes]) -> pd.DataFrame:
    genres = GENRES_100K
    if files.has("u.genre"):
        with files.open("u.genre") as g:
            lines = g.read().decode("latin-1").splitlines()
        genres = [line.rsplit("|", 1)[0] for line in lines if line.strip()]
    names = ["item_id", "title", "released", "video", "url", *genres]
    df = _table(f, "|", names, "latin-1")
    flags = df[genres].fillna("0").eq("1")
    cats = flags.apply(lambda row: ", ".join(row.index[row.to_numpy()]), axis=1)
    released = df["released"].fillna("")
    years = [_year(t, r) for t, r in zip(df["title"].fillna(""), released, strict=True)]
    return _catalog(df["item_id"], df["title"], years, cats)


def _movies_1m(_: _Files, f: IO[bytes]) -> pd.DataFrame:
    df = _table(_double_colon(f), "\t", ["item_id", "title", "genres"], "latin-1")
    return _movies_with_title_years(df)


def _movies_latest(_: _Files, f: IO[bytes]) -> pd.DataFrame:
    df = pd.read_csv(f, dtype=str, encoding="utf-8").rename(columns={"movieId": "item_id"})
    return _movies_with_title_years(df)


def _movies_with_title_years(df: pd.DataFrame) -> pd.DataFrame:
    genres = df["genres"].fillna("").str.replace("(no genres listed)", "", regex=False)
    cats = genres.map(lambda g: ", ".join(x for x in g.split("|") if x))
    years = [_year(t, "") for t in df["title"].fillna("")]
    return _catalog(df["item_id"], df["title"], years, cats)


def _catalog(ids: pd.Series, titles: pd.Series, years: list[str], cats: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ids,
            # The year moves from "Toy Story (1995)" into the description.
            "title": titles.fillna("").map(lambda t: _TITLE_YEAR.sub("", t).strip()),
            "description": [f"Released {y}." if y else "" for y in years],
            "brand": "",
            "categories": cats,
        }
    )


def _year(title: str, release_date: str) -> str:
    m = _DATE_YEAR.search(release_date) or _TITLE_YEAR.search(title)
    return m.group(1) if m else ""


_RATINGS = {"100k": _ratings_100k, "1m": _ratings_1m, "latest": _ratings_latest}
_MOVIES = {"100k": _movies_100k, "1m": _movies_1m, "latest": _movies_latest}
