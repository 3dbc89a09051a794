"""A real, tiny ``slimrec run`` folder for tests: data, teacher, student, fitted models.

``write_csv`` and ``tiny_config`` describe the run (tiny random Llama as teacher and
student, a small CSV read like a user's file); tests/pipeline/test_pipeline_run.py runs
the whole pipeline with them, and the ``tiny_run`` fixture builds one run per session for
the tests that need a finished run (serving). Some item titles of ``tiny_run`` are
hostile HTML, so every consumer of titles is tested against them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# An unclosed tag: the loaders strip whole tags (and escaped ones), but this survives as
# text and is live markup the moment a page puts it into innerHTML.
HOSTILE = "<img src=x onerror=alert(1)//"
ALL_METHODS = ["backbone", "backbone+", "slim-", "slim", "slim-step1", "text-matching"]


def write_csv(
    folder: Path, n_users: int = 36, n_items: int = 200, hostile_every: int = 0
) -> tuple[Path, Path]:
    """Users who each browse a neighbourhood of the catalog (learnable, with a long tail).

    ``hostile_every`` > 0: every such item's title starts with :data:`HOSTILE`, which the
    loader's tag stripping leaves in place (it is not a whole tag), so the prepared catalog
    holds the literal markup.
    """
    rng = np.random.default_rng(3)
    rows = []
    for u in range(n_users):
        start = int(rng.integers(n_items))
        for t in range(int(rng.integers(6, 10))):
            item = (start + int(rng.zipf(1.6))) % n_items
            rows.append((f"user{u}", f"sku{item}", t))
    ratings = folder / "ratings.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(ratings, index=False)
    items = folder / "items.csv"
    kinds = ["pen", "notebook", "stapler", "folder", "ink"]
    titles = [f"{kinds[i % 5].title()} model {i}" for i in range(n_items)]
    if hostile_every:
        titles = [f"{HOSTILE} {t}" if i % hostile_every == 0 else t for i, t in enumerate(titles)]
    pd.DataFrame({"item_id": [f"sku{i}" for i in range(n_items)], "title": titles}).to_csv(
        items, index=False
    )
    return ratings, items


def tiny_config(
    ratings: Path,
    items: Path,
    lm: Path,
    student_epochs: int = 1,
    methods: list[str | dict] | None = None,
) -> dict:
    return {
        "name": "ci-tiny",
        "data": {
            "source": {"dataset": str(ratings), "items": str(items)},
            "prepare": {"user_core": 3, "item_core": 1},
        },
        "teacher": {
            "backend": "hf",
            "model": str(lm),
            "n_users": 12,
            "batch_size": 12,
            "threads": 1,
            "answer_cache": "run",
            "sampling": {"max_new_tokens": 24},
        },
        "student": {
            "base_model": str(lm),
            "epochs": student_epochs,
            "batch_size": 4,
            "grad_accum": 1,
            "lr": 0.01,
            "warmup_steps": 0,
            "max_length": 256,
            "valid_fraction": 0.2,
            "only_parsed": False,  # a random tiny model never writes all three steps
            "threads": 1,
        },
        "reason": {"sampling": {"max_new_tokens": 16}, "batch_size": 18, "threads": 1},
        "backbones": ["sasrec"],
        "methods": methods or ALL_METHODS,
        "seeds": [0],
        "train": {"epochs": 2, "min_patience_steps": 0, "model": {"dim": 16}, "threads": 1},
    }


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, lively_lm) -> Path:
    """A finished run folder (methods backbone, slim, text-matching) with hostile titles."""
    from slimrec.pipeline import RunConfig, run_pipeline

    folder = tmp_path_factory.mktemp("tiny-run")
    ratings, items = write_csv(folder, hostile_every=7)
    config = tiny_config(ratings, items, lively_lm, methods=["backbone", "slim", "text-matching"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        run_pipeline(RunConfig.model_validate(config), folder / "run", echo=lambda _: None)
    return folder / "run"
