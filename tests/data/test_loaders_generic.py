"""Generic interaction tables (CSV, TSV, Parquet, JSON Lines, gzipped) and item catalogs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from slimrec.data.loaders import DataSource, load_dataset
from slimrec.data.loaders.generic import load_table
from slimrec.errors import DataError

ROWS = [("u1", "007", 30), ("u1", "i2", 10), ("u2", "i2", 20), ("u2", "007", 5)]


def frame(user: str = "user_id", item: str = "item_id", order: str = "timestamp") -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=[user, item, order])


def write_jsonl(path: Path, records: list[dict]) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in records)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def assert_rows(raw) -> None:
    got = list(raw.interactions.itertuples(index=False, name=None))
    assert got == [(u, i, o) for u, i, o in ROWS]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("data.csv", "csv"), ("data.csv.gz", "csv"), ("data.tsv", "tsv"), ("data.tsv.gz", "tsv")],
)
def test_delimited_tables_keep_text_ids(tmp_path, name, fmt):
    path = tmp_path / name
    frame().to_csv(path, sep="\t" if fmt == "tsv" else ",", index=False)
    raw = load_table(path, fmt=fmt)
    assert_rows(raw)  # "007" stays "007"
    assert raw.name == "data"


def test_parquet_and_jsonl_gz(tmp_path):
    frame().to_parquet(tmp_path / "d.parquet")
    assert_rows(load_table(tmp_path / "d.parquet", fmt="parquet"))
    recs = [{"user_id": u, "item_id": i, "timestamp": t} for u, i, t in ROWS]
    assert_rows(load_table(write_jsonl(tmp_path / "d.jsonl.gz", recs), fmt="jsonl"))
    assert_rows(load_table(write_jsonl(tmp_path / "d.jsonl", recs), fmt="jsonl"))


@pytest.mark.parametrize(
    "names",
    [
        ("userId", "movieId", "timestamp"),
        ("reviewerID", "asin", "unixReviewTime"),
        ("User", "Item", "Time"),
    ],
)
def test_common_column_names_are_detected(tmp_path, names):
    path = tmp_path / "r.csv"
    frame(*names).to_csv(path, index=False)
    assert_rows(load_table(path, fmt="csv"))


def test_column_mapping_with_both_key_styles(tmp_path):
    path = tmp_path / "r.csv"
    frame("who", "what", "when").to_csv(path, index=False)
    assert_rows(
        load_table(path, fmt="csv", columns={"user": "who", "item": "what", "order": "when"})
    )
    mapped = {"user_id": "who", "item_id": "what", "timestamp": "when"}
    assert_rows(load_table(path, fmt="csv", columns=mapped))


def test_custom_separator_and_latin1(tmp_path):
    path = tmp_path / "r.txt"
    path.write_bytes("user;item;order\nJosé;i1;1\nJosé;i2;2\n".encode("latin-1"))
    raw = load_table(path, fmt="csv", sep=";", encoding="latin-1")
    assert raw.interactions["user_id"].tolist() == ["José", "José"]


def test_without_order_column_the_file_order_is_used(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item\na,x\na,y\nb,x\n")
    assert load_table(path, fmt="csv").interactions["order"].tolist() == [0, 1, 2]


def test_text_dates_become_epoch_seconds(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item,date\na,x,2020-01-02\na,y,2020-01-01 00:00:10\n")
    assert load_table(path, fmt="csv").interactions["order"].tolist() == [1577923200, 1577836810]


def test_item_catalog_with_mapping_and_cleaning(tmp_path):
    inter = tmp_path / "r.csv"
    frame().to_csv(inter, index=False)
    items = write_jsonl(
        tmp_path / "items.jsonl",
        [
            {"sku": "007", "name": "Spy <b>Kit</b>", "cats": ["Toys", "Games"], "brand": "Q"},
            {"sku": "i2", "name": "Pen &amp; Ink", "cats": [], "brand": None},
        ],
    )
    raw = load_table(
        inter,
        fmt="csv",
        items_path=str(items),
        item_columns={"item": "sku", "title": "name", "categories": "cats"},
    )
    cat = raw.items.set_index("item_id")
    assert cat.loc["007", "title"] == "Spy Kit" and cat.loc["007", "categories"] == "Toys, Games"
    assert cat.loc["i2", "title"] == "Pen & Ink" and cat.loc["i2", "brand"] == ""


def test_parquet_catalog_with_detected_names(tmp_path):
    inter = tmp_path / "r.csv"
    frame().to_csv(inter, index=False)
    items = pd.DataFrame({"item_id": ["007", "i2"], "title": ["A", "B"], "genres": [["x"], []]})
    items.to_parquet(tmp_path / "items.parquet")
    raw = load_table(inter, fmt="csv", items_path=tmp_path / "items.parquet")
    assert raw.items.set_index("item_id")["categories"].to_dict() == {"007": "x", "i2": ""}


def one_line_error(excinfo, filename: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and filename in msg, msg
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(DataError) as e:
        load_table(tmp_path / "nope.csv", fmt="csv")
    one_line_error(e, "nope.csv")


def test_mapped_column_absent_lists_columns_found(tmp_path):
    path = tmp_path / "r.csv"
    frame().to_csv(path, index=False)
    with pytest.raises(DataError) as e:
        load_table(path, fmt="csv", columns={"user": "uid"})
    msg = one_line_error(e, "r.csv")
    assert "'uid'" in msg and "user_id" in msg and "timestamp" in msg


def test_undetectable_item_column(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user_id,thing\na,b\n")
    with pytest.raises(DataError) as e:
        load_table(path, fmt="csv")
    assert "no item column" in one_line_error(e, "r.csv")


def test_catalog_missing_mapped_column(tmp_path):
    inter = tmp_path / "r.csv"
    frame().to_csv(inter, index=False)
    (tmp_path / "items.csv").write_text("item_id,title\n007,A\n")
    with pytest.raises(DataError) as e:
        load_table(inter, fmt="csv", items_path=tmp_path / "items.csv", item_columns={"title": "t"})
    one_line_error(e, "items.csv")


def test_not_utf8_names_line_and_suggests_latin1(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"user,item,order\na,x,1\nJos\xe9,y,2\n")
    with pytest.raises(DataError) as e:
        load_table(path, fmt="csv")
    msg = one_line_error(e, "r.csv")
    assert "line 3" in msg and "byte 25" in msg and "latin-1" in msg


@pytest.mark.parametrize(
    ("name", "fmt", "content"),
    [
        ("bad.parquet", "parquet", b"this is not parquet"),
        ("bad.jsonl", "jsonl", b'{"user": "a", "item": "b"}\n{oops\n'),
        ("bad.csv", "csv", b'user,item\n"a,b\n'),
        ("bad.csv.gz", "csv", b"not gzip at all"),
    ],
)
def test_unparseable_files(tmp_path, name, fmt, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as e:
        load_table(tmp_path / name, fmt=fmt)
    one_line_error(e, name)


@pytest.mark.parametrize("name", ["d.csv", "d.tsv.gz", "d.parquet", "d.jsonl"])
def test_load_dataset_detects_table_formats(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame().to_parquet(path)
    elif name.endswith(".jsonl"):
        write_jsonl(path, [{"user_id": u, "item_id": i, "timestamp": t} for u, i, t in ROWS])
    else:
        frame().to_csv(path, sep="\t" if ".tsv" in name else ",", index=False)
    assert_rows(load_dataset(DataSource(dataset=str(path))))


def test_parquet_datetime_order_and_unused_columns(tmp_path):
    df = frame()
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s")
    df["review"] = "long text"
    df.to_parquet(tmp_path / "d.parquet")
    assert_rows(load_table(tmp_path / "d.parquet", fmt="parquet"))


def test_jsonl_not_utf8(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"user": "a", "item": "x"}\n{"user": "Jos\xe9", "item": "y"}\n')
    with pytest.raises(DataError) as e:
        load_table(path, fmt="jsonl")
    assert "line 2" in one_line_error(e, "r.jsonl")
