"""MovieLens 100K, 1M and latest-small, from unpacked folders and from the official zips."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from slimrec.data.loaders import DataSource, detect_format, load_dataset
from slimrec.data.loaders.movielens import GENRES_100K, detect_movielens, load_movielens
from slimrec.errors import DataError


def flags(*on: str) -> str:
    return "|".join("1" if g in on else "0" for g in GENRES_100K)


# File name -> bytes, in each variant's own encoding and separators.
ML_100K = {
    "u.data": b"1\t2\t5\t881250949\n1\t1\t3\t881250000\n2\t1\t4\t891717742\n",
    "u.item": (
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags('Animation', 'Comedy')}\n"
        f"2|Misérables, Les (1995)|01-Jan-1995||http://y|{flags('Drama', 'War')}\n"
        f"3|unknown||||{flags('unknown')}\n"
    ).encode("latin-1"),
    "u.genre": "".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)).encode("latin-1") + b"\n",
}
ML_1M = {
    "ratings.dat": b"1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n",
    "movies.dat": (
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::Misérables, Les (1995)::Drama|Musical\n"
    ).encode("latin-1"),
}
ML_LATEST = {
    "ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n",
    "movies.csv": (
        "movieId,title,genres\n"
        '1,"American President, The (1995)",Comedy|Drama|Romance\n'
        "3,Misérables (2012),(no genres listed)\n"
    ).encode(),
}


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def write_zip(path: Path, folder: str, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{folder}/", b"")
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}", data)
    return path


def sources(tmp_path: Path, name: str, files: dict[str, bytes]) -> list[Path]:
    """The same data as a flat folder, a folder with one sub-folder, and a zip."""
    return [
        write_folder(tmp_path / "flat", files),
        write_folder(tmp_path / "outer" / name, files).parent,
        write_zip(tmp_path / f"{name}.zip", name, files),
    ]


def test_100k(tmp_path):
    for path in sources(tmp_path, "ml-100k", ML_100K):
        assert detect_movielens(path) == "100k"
        raw = load_movielens(path)
        assert raw.interactions.values.tolist() == [
            ["1", "2", 881250949],
            ["1", "1", 881250000],
            ["2", "1", 891717742],
        ]
        cat = raw.items.set_index("item_id")
        assert cat.loc["2", "title"] == "Misérables, Les"
        assert cat.loc["2", "categories"] == "Drama, War"
        assert cat.loc["1", "description"] == "Released 1995." and cat.loc["1", "brand"] == ""
        assert cat.loc["3", "description"] == "" and cat.loc["3", "categories"] == "unknown"


def test_100k_without_genre_file_uses_standard_genres(tmp_path):
    files = {k: v for k, v in ML_100K.items() if k != "u.genre"}
    raw = load_movielens(write_folder(tmp_path / "ml-100k", files))
    assert raw.name == "ml-100k"
    assert raw.items.set_index("item_id").loc["1", "categories"] == "Animation, Comedy"


def test_1m(tmp_path):
    for path in sources(tmp_path, "ml-1m", ML_1M):
        assert detect_movielens(path) == "1m"
        raw = load_movielens(path)
        assert raw.interactions["order"].tolist() == [978300760, 978302109, 978298413]
        cat = raw.items.set_index("item_id")
        assert cat.loc["661", "title"] == "Misérables, Les"
        assert cat.loc["661", "categories"] == "Drama, Musical"
        assert cat.loc["1193", "description"] == "Released 1975."


def test_latest_small(tmp_path):
    for path in sources(tmp_path, "ml-latest-small", ML_LATEST):
        assert detect_movielens(path) == "latest"
        raw = load_movielens(path)
        assert raw.interactions["item_id"].tolist() == ["1", "3"]
        cat = raw.items.set_index("item_id")
        assert cat.loc["1", "title"] == "American President, The"
        assert cat.loc["1", "categories"] == "Comedy, Drama, Romance"
        assert cat.loc["3", "title"] == "Misérables" and cat.loc["3", "categories"] == ""
        assert cat.loc["3", "description"] == "Released 2012."


def test_ratings_without_movies_file_still_load(tmp_path):
    raw = load_movielens(write_folder(tmp_path / "d", {"ratings.dat": ML_1M["ratings.dat"]}))
    assert sorted(raw.items["item_id"]) == ["1193", "661"]


def test_load_dataset_detects_movielens(tmp_path):
    for path in sources(tmp_path, "ml-1m", ML_1M):
        src = DataSource(dataset=str(path))
        assert detect_format(src) == "movielens"
        assert len(load_dataset(src).interactions) == 3


def test_other_paths_are_not_movielens(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId\n1,2\n")  # no movies.csv beside it
    assert detect_movielens(tmp_path) is None
    assert detect_movielens(tmp_path / "ratings.csv") is None
    assert detect_movielens(tmp_path / "missing") is None
    assert detect_movielens(write_zip(tmp_path / "other.zip", "x", {"a.txt": b"1"})) is None


def error_of(path: Path, filename: str) -> str:
    with pytest.raises(DataError) as e:
        load_movielens(path)
    msg = str(e.value)
    assert "\n" not in msg and filename in msg, msg
    return msg


def test_bad_inputs(tmp_path):
    error_of(tmp_path / "nothing-here", "nothing-here")
    files = {**ML_LATEST, "movies.csv": b"movieId,title,genres\n1,Caf\xe9 (1999),Drama\n"}
    assert "UTF-8" in error_of(write_zip(tmp_path / "ml.zip", "ml", files), "movies.csv")
    broken = {**ML_LATEST, "ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4,soon\n"}
    assert "'soon'" in error_of(write_folder(tmp_path / "broken", broken), "ratings.csv")
    assert "movies.csv" in error_of(
        write_folder(tmp_path / "empty", {**broken, "movies.csv": b""}), ""
    )
    wrong = {**ML_LATEST, "ratings.csv": b"user,movie,stars\n1,1,4\n"}
    assert "found" in error_of(write_folder(tmp_path / "wrong", wrong), "ratings.csv")
