"""Student distillation in float32, under bf16 autocast, and on bf16 base weights, side by
side (issue 20).

Variants: ``float32``; ``autocast`` (float32 weights, the passes computed in bf16 under
torch.autocast); ``weights`` (the frozen base loaded in bf16, the LoRA weights and the
optimiser kept in float32 by peft). The same seeded subset of a run's teacher rationales,
the same student settings, one epoch each: seconds per optimiser step, and the held-out
users' loss per rationale token of each trained adapter measured again in float32 (so
the precision of the measurement is not what differs). lscpu flags are printed with the
table.

Usage (~12 min for 128 users on 2 cores):
    .venv/bin/python bench/distill_precision.py \
        --rationales bench/runs/amazon-games-teacher1000/stages/teach-*/rationales.parquet \
        --users 128 --out /tmp/distill-precision
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pandas as pd
import torch

from slimrec.machine import describe
from slimrec.methods.slim.student import StudentConfig, distill
from slimrec.methods.slim.student.lora import token_nll
from slimrec.methods.slim.student.sft_data import (
    collate,
    encode,
    end_token_id,
    load_rationales,
    split_users,
)


def float32_valid_loss(cfg: StudentConfig, subset: Path, adapter: Path) -> float:
    """Loss per rationale token of the held-out users, the adapter merged into fp32."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from slimrec.llm.local import resolve_base

    folder = resolve_base(cfg.base_model)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    model = PeftModel.from_pretrained(base, adapter).eval()
    _, valid = split_users(load_rationales(subset), cfg.valid_fraction, cfg.seed)
    end = end_token_id(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    total, count = 0.0, 0
    with torch.no_grad():
        for record in valid:
            example = encode(tokenizer, record.messages, record.rationale, cfg.max_length, end)
            loss, n = token_nll(model, collate([example], pad))
            total, count = total + loss.item(), count + n
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rationales", type=Path, required=True)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", default="float32,autocast,weights")
    parser.add_argument("--threads", type=int, default=2, help="the same for every variant")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    frame = pd.read_parquet(args.rationales)
    users = sorted(set(frame["user"].astype(str)))
    chosen = set(random.Random(0).sample(users, min(args.users, len(users))))
    subset = args.out / "rationales.parquet"
    frame[frame["user"].astype(str).isin(chosen)].to_parquet(subset)

    rows = []
    for variant in args.variants.split(","):
        cfg = StudentConfig(
            epochs=1,
            batch_size=4,
            grad_accum=1,
            lr=args.lr,
            max_repeated_lines=1,
            valid_fraction=0.2,
            threads=args.threads,
            autocast="bfloat16" if variant == "autocast" else None,
            dtype="bfloat16" if variant == "weights" else "float32",
        )
        result = distill(subset, cfg, args.out / variant)
        rows.append(
            {
                "variant": variant,
                "steps": result["steps"],
                "s_per_step": result["train_s"] / result["steps"],
                "valid_loss_base": result["valid_loss_base"],
                "valid_loss_as_trained": result["valid_loss"],
                "valid_loss_float32": float32_valid_loss(
                    cfg, subset, args.out / variant / "adapter"
                ),
            }
        )
    print(describe())
    for row in rows:
        row["speed_vs_first"] = rows[0]["s_per_step"] / row["s_per_step"]
    print("| " + " | ".join(rows[0]) + " |")
    print("|---" * len(rows[0]) + "|")
    for row in rows:
        print(
            "| " + " | ".join(v if isinstance(v, str) else f"{v:.4g}" for v in row.values()) + " |"
        )
    results = {"machine": describe(), "rationales": str(args.rationales), "users": args.users}
    results |= {"threads": args.threads, "rows": rows}
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
