"""The prepared folder: atomic writing and an identical round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from slimrec.data import PrepareConfig, PreparedDataset, RawDataset, prepare
from slimrec.errors import DataError


@pytest.fixture
def prepared() -> PreparedDataset:
    rng = np.random.default_rng(3)
    rows = [
        (f"u{u}", f"i{rng.integers(40)}", t) for u in range(60) for t in range(rng.integers(3, 20))
    ]
    items = pd.DataFrame(
        {"item_id": [f"i{i}" for i in range(40)], "title": [f"Title é {i}" for i in range(40)]}
    )
    raw = RawDataset.from_frames(
        pd.DataFrame(rows, columns=["user_id", "item_id", "order"]), items, name="toy", source="toy"
    )
    return prepare(raw, PrepareConfig(user_core=3, item_core=2))


def test_round_trip_is_identical(prepared, tmp_path):
    out = prepared.save(tmp_path / "p")
    back = PreparedDataset.load(out)
    assert len(back.sequences) == len(prepared.sequences)
    assert all(
        np.array_equal(a, b) for a, b in zip(back.sequences, prepared.sequences, strict=True)
    )
    pd.testing.assert_frame_equal(back.items, prepared.items)
    pd.testing.assert_frame_equal(back.users, prepared.users)
    assert back.manifest() == prepared.manifest()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"] == PrepareConfig(user_core=3, item_core=2).model_dump()
    assert manifest["stats"]["users"] == prepared.n_users


def test_existing_folder_is_kept_unless_overwrite(prepared, tmp_path):
    out = prepared.save(tmp_path / "p")
    with pytest.raises(DataError, match="already exists"):
        prepared.save(out)
    prepared.save(out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no temporary left behind


def test_failed_write_leaves_no_folder(prepared, tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", explode)
    with pytest.raises(OSError):
        prepared.save(tmp_path / "p")
    assert list(tmp_path.iterdir()) == []


def test_loading_something_else_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a prepared dataset"):
        PreparedDataset.load(tmp_path)
