"""Rows of a small rationales.parquet in the format `slimrec teach` writes, and a student
config that memorises such rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from slimrec.methods.slim.prompts import TEMPLATE_VERSION, build_prompt

ITEMS = ["Pilot G2 pens", "Rhodia notebook", "Swingline stapler", "Manila folders", "Ink"]


def rationale(i: int) -> str:
    return (
        f"Step 1: The user likes pens and paper {i}.\n"
        "Step 2: 1. Pens 2. Notebooks 3. Staplers 4. Folders 5. Printers\n"
        "Step 3: Pens: Pilot G2. Notebooks: Rhodia."
    )


def rationale_rows(n_users: int = 6) -> list[dict]:
    rows = []
    for u in range(n_users):
        history = ITEMS[u % 3 : u % 3 + 3]
        prompt = build_prompt(history).messages()
        rows.append(
            {
                "user": f"u{u}",
                "prompt": json.dumps(prompt),
                "response": rationale(u),
                "step1": "",
                "step2": "",
                "step3": "",
                "parsed": True,
                "model": "teacher",
                "template_version": TEMPLATE_VERSION,
                "prompt_tokens": 10,
                "completion_tokens": 10,
            }
        )
    return rows


def write_rationales(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


def memorising(base_model: Path, max_length: int):
    """A student config that memorises a few rationales of a tiny model in 40 epochs."""
    from slimrec.methods.slim.student import StudentConfig

    return StudentConfig(
        base_model=str(base_model),
        epochs=40,
        batch_size=1,
        grad_accum=1,
        lr=2e-2,
        warmup_steps=0,
        lora_rank=16,
        lora_alpha=32,
        lora_dropout=0.0,
        threads=1,
        max_length=max_length,
    )
