"""RecBole atomic files load as they are, detected automatically."""

from __future__ import annotations

import pytest
from tests.cli_helpers import run

from slimrec.data.loaders import DataSource, detect_format, load_dataset
from slimrec.errors import DataError


def write_atomic(folder, with_time=True, with_items=True):
    folder.mkdir(parents=True, exist_ok=True)
    head = "user_id:token\titem_id:token\trating:float" + ("\ttimestamp:float" if with_time else "")
    rows = [("u1", "i2", 4, 20), ("u1", "i1", 5, 10), ("u1", "i3", 2, 30)]
    rows += [("u2", "i3", 3, 5), ("u2", "i1", 1, 7), ("u2", "i2", 1, 9)]
    lines = [head] + ["\t".join(map(str, r if with_time else r[:3])) for r in rows]
    (folder / "shop.inter").write_text("\n".join(lines) + "\n")
    if with_items:
        (folder / "shop.item").write_text(
            "item_id:token\ttitle:token_seq\tcategories:token_seq\tbrand:token\n"
            "i1\tRed Pen, fine\tpens office\tPilot\n"
            "i2\tBlue Notebook\tpaper\tRhodia\n"
            "i3\tStapler\toffice\t\n"
        )
    return folder


def test_a_folder_of_atomic_files_is_detected_and_read(tmp_path):
    folder = write_atomic(tmp_path / "shop")
    src = DataSource(dataset=str(folder))
    assert detect_format(src) == "recbole"
    raw = load_dataset(src)
    u1 = raw.interactions[raw.interactions.user_id == "u1"].sort_values("order")
    assert list(u1.item_id) == ["i1", "i2", "i3"]  # ordered by timestamp, not file order
    items = raw.items.set_index("item_id")
    assert items.loc["i1", "title"] == "Red Pen, fine"
    assert items.loc["i1", "categories"] == "pens, office"
    assert items.loc["i2", "brand"] == "Rhodia"
    # The .inter file itself works too.
    assert detect_format(DataSource(dataset=str(folder / "shop.inter"))) == "recbole"


def test_without_timestamps_file_order_is_history_order(tmp_path):
    folder = write_atomic(tmp_path / "shop", with_time=False, with_items=False)
    raw = load_dataset(DataSource(dataset=str(folder)))
    u1 = raw.interactions[raw.interactions.user_id == "u1"].sort_values("order")
    assert list(u1.item_id) == ["i2", "i1", "i3"]
    assert (raw.items.title == "").all()  # no item file: ids only


def test_missing_columns_are_one_line(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "bad.inter").write_text("user:token\titem_id:token\nu1\ti1\n")
    with pytest.raises(DataError, match="lack column 'user_id'") as e:
        load_dataset(DataSource(dataset=str(folder)))
    assert "\n" not in e.value.one_line()


def test_prepare_reads_atomic_files_from_the_command_line(tmp_path, capsys):
    folder = write_atomic(tmp_path / "shop")
    code, _, err = run(
        ["data", "prepare", "--dataset", str(folder), "--out", str(tmp_path / "prepared"),
         "--user-core", "0", "--item-core", "0", "--min-seq-len", "3"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "prepared").is_dir()
