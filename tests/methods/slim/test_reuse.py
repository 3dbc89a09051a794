"""Rationales written on a seeded subset of users, reused on the whole dataset by prompt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slimrec.data import PrepareConfig, PreparedDataset, prepare
from slimrec.data.loaders import DataSource, load_dataset
from slimrec.errors import DataError
from slimrec.methods.slim.prompts import PromptConfig
from slimrec.methods.slim.reuse import read_rationales, reuse_rationales
from slimrec.methods.slim.teach import COLUMNS, user_prompts

PROMPT = PromptConfig(max_items=4, hold_out_last=1)


def prepared(folder: Path, config: PrepareConfig) -> PreparedDataset:
    """Users with 6-14 items each from a 40-item catalogue, prepared through slimrec.data."""
    rng = np.random.default_rng(11)
    rows = [
        (f"u{u}", f"i{rng.integers(40)}", t) for u in range(60) for t in range(rng.integers(6, 15))
    ]
    ratings = folder / "ratings.csv"
    items = folder / "items.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(ratings, index=False)
    pd.DataFrame(
        {"item_id": [f"i{i}" for i in range(40)], "title": [f"Game {i}" for i in range(40)]}
    ).to_csv(items, index=False)
    return prepare(load_dataset(DataSource(dataset=str(ratings), items=str(items))), config)


def written_for(data: PreparedDataset) -> pd.DataFrame:
    """A rationales file for every user of ``data``, each answer naming its user's raw id."""
    prompts = user_prompts(data, range(data.n_users), PROMPT)
    raw = data.users.set_index("user")["raw_id"]
    return pd.DataFrame(
        {
            "user": range(data.n_users),
            "prompt": [p.stored() for p in prompts],
            "response": [
                f"Step 1: {raw[u]} likes games.\nStep 2:\n1. RPG\nStep 3:\nUnder RPG:\n- Game 1"
                for u in range(data.n_users)
            ],
        }
    )


@pytest.fixture
def whole_and_subset(tmp_path) -> tuple[PreparedDataset, PreparedDataset]:
    whole = prepared(tmp_path, PrepareConfig(user_core=5, item_core=1))
    # As configs/amazon-games.yaml: a seeded subset, each user's most recent items only.
    subset = prepared(
        tmp_path, PrepareConfig(user_core=5, item_core=1, max_users=20, max_seq_len=8)
    )
    return whole, subset


def test_subset_rationales_reach_the_same_users_of_the_whole_dataset(whole_and_subset):
    whole, subset = whole_and_subset
    reused = reuse_rationales(written_for(subset), whole, PROMPT)

    assert reused.offered == subset.n_users and reused.matched_prompts == subset.n_users
    by_raw = whole.users.set_index("raw_id")["user"]
    matched = set(reused.rows["user"])
    for origin, raw_id in zip(subset.users["user"], subset.users["raw_id"], strict=True):
        # The subset kept each user's most recent items: the same user is asked the same.
        user = int(by_raw[raw_id])
        assert user in matched
        assert user_prompts(whole, [user], PROMPT) == user_prompts(subset, [origin], PROMPT)
    for user, prompt in zip(reused.rows["user"], reused.rows["prompt"], strict=True):
        assert user_prompts(whole, [user], PROMPT)[0].stored() == prompt
    assert list(reused.rows.columns) == [c for c in COLUMNS if c in reused.rows.columns]
    assert reused.rows["parsed"].dtype == bool and reused.rows["cached"].all()


def test_a_prompt_asked_otherwise_matches_no_user(whole_and_subset):
    whole, subset = whole_and_subset
    other = PROMPT.model_copy(update={"hold_out_last": 0})  # shows one item more
    assert reuse_rationales(written_for(subset), whole, other).matched_users == 0
    edited = written_for(subset)
    edited["prompt"] = edited["prompt"].str.replace("Game", "game")
    assert reuse_rationales(edited, whole, PROMPT).matched_users == 0


def test_the_file_s_user_indices_are_not_trusted(whole_and_subset):
    whole, _ = whole_and_subset
    rows = written_for(whole)
    shuffled = rows.assign(user=rows["user"].to_numpy()[::-1])
    reused = reuse_rationales(shuffled, whole, PROMPT)
    by_user = reused.rows.set_index("user")["response"]
    for user in range(whole.n_users):
        assert by_user[user] == rows.loc[rows["user"] == user, "response"].iloc[0] or (
            # another user asked exactly the same prompt: it shares the first answer
            (rows["prompt"] == rows.loc[user, "prompt"]).sum() > 1
        )


def test_a_row_without_an_answer_gives_no_rationale(whole_and_subset):
    whole, subset = whole_and_subset
    rows = written_for(subset)
    rows.loc[0, "response"], rows.loc[1, "response"] = None, "  "
    reused = reuse_rationales(rows, whole, PROMPT)
    assert reused.offered == subset.n_users - 2
    assert not set(rows.loc[:1, "prompt"]) & set(reused.rows["prompt"])


def test_a_file_without_its_parsed_steps_is_parsed(whole_and_subset, tmp_path):
    whole, subset = whole_and_subset
    bare = written_for(subset)[["prompt", "response"]]
    bare.to_parquet(tmp_path / "bare.parquet")
    reused = reuse_rationales(read_rationales(tmp_path / "bare.parquet"), whole, PROMPT)
    assert reused.rows["step1"].str.contains("likes games").all()
    assert reused.rows["step2"].str.contains("RPG").all()


def test_a_file_without_prompts_is_refused_in_one_line(tmp_path):
    pd.DataFrame({"user": [0], "response": ["Step 1: x"]}).to_parquet(tmp_path / "r.parquet")
    with pytest.raises(DataError, match=r"missing column\(s\) prompt") as found:
        read_rationales(tmp_path / "r.parquet")
    assert "\n" not in found.value.one_line()
    (tmp_path / "not.parquet").write_text("user,prompt\n")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        read_rationales(tmp_path / "not.parquet")
