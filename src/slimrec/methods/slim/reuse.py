"""Rationales written elsewhere, given to this dataset's users whose prompts they answer.

A student's (or teacher's) greedy rationale is a function of its prompt alone, and the
prompt is rendered from the training part of a user's history less its held-out items
(:func:`slimrec.methods.slim.teach.user_prompts`). So an answer written in another run --
the same catalogue subsampled, a GPU machine, a batch job at an endpoint -- is exactly
the answer this run would get for every user whose prompt here is *identical*, character
for character: it has read what this user's prompt shows and nothing else, so it cannot
hold a target the recommender is trained or tested on, and the fusion's cut
(:func:`slimrec.data.prepared.rationale_cutoff`) holds as for rationales written here.
Users whose prompt matches none get no rationale (a zero text vector, as SLIM- gives the
users its teacher did not answer), and the stage reports how many that is.

This is what lets SLIM be measured on all of a large dataset while the LLM writes for a
seeded subset only (docs/benchmarks.md, "amazon-games, all 50,546 users").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from slimrec.data import PreparedDataset
from slimrec.methods.slim.parse import parse_rationale
from slimrec.methods.slim.prompts import PromptConfig
from slimrec.methods.slim.rationale_file import read_rationale_file
from slimrec.methods.slim.teach import COLUMNS, user_prompts

NEEDED = ("prompt", "response")


@dataclass(frozen=True)
class Reused:
    """The rationales matched to this dataset's users, and what matched."""

    rows: pd.DataFrame  # COLUMNS, ``user`` in this dataset's dense indices
    offered: int  # distinct prompts in the file
    matched_users: int
    matched_prompts: int  # distinct prompts of the file that some user here asks


def read_rationales(path: str | Path) -> pd.DataFrame:
    """A rationales file with at least the columns ``prompt`` and ``response``."""
    return read_rationale_file(path, NEEDED)


def reuse_rationales(
    rationales: pd.DataFrame, dataset: PreparedDataset, prompt: PromptConfig
) -> Reused:
    """Every user of ``dataset`` whose prompt, rendered with ``prompt``, is one of
    ``rationales``' prompts, with that row's answer. Rows without an answer are left out;
    where one prompt has several answers (sampled decoding), the first is taken."""
    chosen = list(range(dataset.n_users))
    asked = [p.stored() for p in user_prompts(dataset, chosen, prompt)]
    answered = rationales["response"].fillna("").astype(str).str.strip() != ""
    first = rationales[answered].drop_duplicates("prompt", keep="first").set_index("prompt")
    hits = [(u, text) for u, text in zip(chosen, asked, strict=True) if text in first.index]
    rows = first.loc[[text for _, text in hits]].reset_index()
    rows["user"] = [u for u, _ in hits]
    if not {"step1", "step2", "step3", "parsed"} <= set(rows.columns):  # answers only
        parsed = [parse_rationale(str(r)) for r in rows["response"]]
        rows["step1"] = [r.summary for r in parsed]
        rows["step2"] = [r.categories for r in parsed]
        rows["step3"] = [r.items for r in parsed]
        rows["parsed"] = [r.complete for r in parsed]
    rows["cached"] = True  # not written in this run
    rows = rows.reindex(columns=[c for c in COLUMNS if c in rows.columns])
    return Reused(
        rows=rows,
        offered=len(first),
        matched_users=len(hits),
        matched_prompts=len({text for _, text in hits}),
    )
