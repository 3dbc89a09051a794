"""Amazon Reviews 2014 / 2018 / 2023 dumps, as files or as a folder."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from slimrec.data.loaders import DataSource, detect_format, load_dataset
from slimrec.data.loaders.amazon import load_amazon
from slimrec.errors import DataError


def write_lines(path: Path, lines: list[str]) -> Path:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def reviews_2014(path: Path) -> Path:
    recs = [("A1", "B01", 300), ("A1", "B02", 100), ("A2", "B01", 200)]
    return write_lines(
        path,
        [
            json.dumps({"reviewerID": u, "asin": i, "unixReviewTime": t, "overall": 5.0})
            for u, i, t in recs
        ],
    )


META_2014 = [
    # Python literal, as in the 2014 dumps: single quotes, so not JSON.
    "{'asin': 'B01', 'title': \"Kid's <i>Pen</i>\", 'description': '<p>Writes &amp; draws</p>', "
    "'brand': 'Acme', 'categories': [['Office', 'Pens'], ['Office', 'Gifts']]}",
    json.dumps({"asin": "B02", "categories": [["Office"]]}),
]


def test_2014_reviews_with_python_literal_meta(tmp_path):
    meta = write_lines(tmp_path / "meta_Office_Products.json.gz", META_2014)
    raw = load_amazon(reviews_2014(tmp_path / "reviews_Office_Products_5.json.gz"), meta)
    assert raw.name == "Office_Products"
    assert raw.interactions.values.tolist() == [
        ["A1", "B01", 300],
        ["A1", "B02", 100],
        ["A2", "B01", 200],
    ]
    b01 = raw.items.set_index("item_id").loc["B01"]
    assert b01["title"] == "Kid's Pen" and b01["description"] == "Writes & draws"
    assert b01["brand"] == "Acme" and b01["categories"] == "Office, Pens, Gifts"


def test_sibling_meta_is_found_when_not_given(tmp_path):
    write_lines(tmp_path / "meta_Office_Products.json", META_2014)
    write_lines(tmp_path / "meta_Toys.json", [json.dumps({"asin": "T1"})])
    raw = load_amazon(reviews_2014(tmp_path / "reviews_Office_Products_5.json"), None)
    assert sorted(raw.items["item_id"]) == ["B01", "B02"]


def test_no_meta_means_no_catalog_text(tmp_path):
    raw = load_amazon(reviews_2014(tmp_path / "Office_Products_5.json"), None)
    assert sorted(raw.items["item_id"]) == ["B01", "B02"]
    assert (raw.items["title"] == "").all()


def test_2018_meta_lists_and_duplicate_asins(tmp_path):
    meta = write_lines(
        tmp_path / "meta_Office_Products.json.gz",
        [
            json.dumps({"asin": "B01", "title": "Pen", "description": ["Blue.", "<b>Fine</b> tip."],
                        "brand": "Acme", "category": ["Office", "Pens"]}),
            json.dumps({"asin": "B01", "title": "Pen (duplicate row)"}),
            json.dumps({"asin": "B02", "title": "Pad", "description": [], "category": []}),
        ],
    )  # fmt: skip
    raw = load_amazon(reviews_2014(tmp_path / "Office_Products_5.json.gz"), str(meta))
    cat = raw.items.set_index("item_id")
    assert cat.loc["B01", "title"] == "Pen" and cat.loc["B01", "description"] == "Blue., Fine tip."
    assert cat.loc["B01", "categories"] == "Office, Pens" and cat.loc["B02", "description"] == ""


def write_2023(folder: Path) -> None:
    write_lines(
        folder / "Office_Products.jsonl.gz",
        [
            json.dumps(
                {"user_id": "U1", "asin": "V1", "parent_asin": "P1", "timestamp": 1600000000000}
            ),
            json.dumps(
                {"user_id": "U1", "asin": "V2", "parent_asin": "P2", "timestamp": 1500000000000}
            ),
        ],
    )
    write_lines(
        folder / "meta_Office_Products.jsonl.gz",
        [
            json.dumps({"parent_asin": "P1", "title": "Stapler", "description": ["Heavy duty"],
                        "store": "Swingline", "categories": ["Office", "Staplers"], "details": {}}),
            json.dumps({"parent_asin": "P2", "title": "Tape", "store": None,
                        "categories": [], "details": {"Brand": "Scotch"}}),
        ],
    )  # fmt: skip


def test_2023_folder_uses_parent_asin_and_store(tmp_path):
    write_2023(tmp_path)
    raw = load_amazon(tmp_path, None)
    assert raw.interactions["item_id"].tolist() == ["P1", "P2"]
    assert raw.interactions["order"].tolist() == [1600000000000, 1500000000000]
    cat = raw.items.set_index("item_id")
    assert cat.loc["P1", "brand"] == "Swingline" and cat.loc["P2", "brand"] == "Scotch"
    assert (
        cat.loc["P1", "description"] == "Heavy duty"
        and cat.loc["P1", "categories"] == "Office, Staplers"
    )


def test_load_dataset_detects_amazon_files_and_folders(tmp_path):
    write_2023(tmp_path)
    for path in (tmp_path, tmp_path / "Office_Products.jsonl.gz"):
        src = DataSource(dataset=str(path))
        assert detect_format(src) == "amazon"
        assert len(load_dataset(src).items) == 2
    (tmp_path / "old").mkdir()
    reviews = reviews_2014(tmp_path / "old" / "reviews_X.json")
    assert detect_format(DataSource(dataset=str(reviews))) == "amazon"


def error_of(reviews: Path, meta: Path | None, filename: str) -> str:
    with pytest.raises(DataError) as e:
        load_amazon(reviews, meta)
    msg = str(e.value)
    assert "\n" not in msg and filename in msg, msg
    return msg


def test_garbage_line_names_file_and_line(tmp_path):
    reviews = reviews_2014(tmp_path / "r.json")
    meta = write_lines(tmp_path / "meta_r.json", [*META_2014, "<html>oops</html>"])
    assert "line 3" in error_of(reviews, meta, "meta_r.json")
    with reviews.open("a") as f:
        f.write("[1, 2]\n")
    assert "line 4" in error_of(reviews, None, "r.json")


def test_not_utf8_and_missing_keys_and_missing_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(
        b'{"reviewerID": "A", "asin": "B", "unixReviewTime": 1, "summary": "Caf\xe9"}\n'
    )
    assert "line 1" in error_of(bad, None, "bad.json") and "UTF-8" in error_of(
        bad, None, "bad.json"
    )
    keys = write_lines(tmp_path / "keys.json", [json.dumps({"reviewerID": "A", "asin": "B"})])
    assert "unixReviewTime" in error_of(keys, None, "keys.json")
    later = write_lines(
        tmp_path / "later.json",
        [
            json.dumps({"reviewerID": "A", "asin": "B", "unixReviewTime": 1}),
            json.dumps({"reviewerID": "A"}),
        ],
    )
    assert "line 2" in error_of(later, None, "later.json")
    error_of(tmp_path / "nope.json", None, "nope.json")
    error_of(reviews_2014(tmp_path / "r.json"), tmp_path / "meta_nope.json", "meta_nope.json")
    meta = write_lines(tmp_path / "meta_x.json", [json.dumps({"title": "no id"})])
    assert "line 1" in error_of(tmp_path / "r.json", meta, "meta_x.json")
