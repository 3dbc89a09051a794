"""Teacher answers under each prompt template, side by side: parsed, echoed, grounded.

The quickstart's teacher users (ml-100k, 150 users, 32 taught, hold-out 1) answered by the
same teacher under every template version given; per version: parse rate, the share of
step 1s that echo the prompt's ordering words ("oldest first"), repeated lines, and
step 3's grounding in the catalog (in the catalog / new to the user / next item named,
:mod:`slimrec.methods.slim.grounding`). Answers go through the shared answer cache, so
a template measured before costs nothing.

Usage: .venv/bin/python bench/teacher_prompts.py --data PREPARED --out FILE.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from slimrec.data import PreparedDataset
from slimrec.llm.backends.base import SamplingConfig
from slimrec.methods.slim.grounding import run_grounding
from slimrec.methods.slim.prompts import TEMPLATES, PromptConfig
from slimrec.methods.slim.rationale_checks import repeated_lines
from slimrec.methods.slim.teach import TeacherConfig, teach


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="The quickstart's prepared data.")
    ap.add_argument("--versions", default=",".join(TEMPLATES))
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--work", type=Path, default=Path("runs/teacher-prompts"))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    data = PreparedDataset.load(args.data)
    rows = []
    for version in args.versions.split(","):
        words = {"domain": "movies", "verb": "watched", "category_noun": "genres"}
        prompt = PromptConfig(**words, per_category=2, max_items=15, hold_out_last=1,
                              version=version)  # fmt: skip
        sampling = SamplingConfig(max_new_tokens=args.max_new_tokens)
        config = TeacherConfig(model="qwen2.5-coder-0.5b", batch_size=16, prompt=prompt,
                               sampling=sampling)  # fmt: skip
        out = args.work / f"{version}.parquet"
        result = teach(args.data, out, config, n_users=args.users, seed=0, progress=False)
        frame = pd.read_parquet(out)
        found = run_grounding(frame, data, prompt.hold_out_last)
        step1 = frame["step1"].fillna("").str.lower()
        rows.append({
            "version": version, "users": len(frame), "asked": result.asked,
            "parse_rate": float(frame["parsed"].mean()),
            "echo_rate": float(step1.str.contains("oldest first|in this order").mean()),
            "repeat_rate": float(frame["response"].map(repeated_lines).gt(0).mean()),
            "suggestions": found.suggestions, "grounded": found.grounded_share,
            "new": found.new_share, "hit": found.hit_rate,
            "mean_tokens": float(frame["completion_tokens"].mean()),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    print("| template | users | parsed | step 1 echoes the order words | repeating a line | "
          "step-3 suggestions | in the catalog | new to the user | next item named |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['version']} | {r['users']} | {100 * r['parse_rate']:.0f}% | "
              f"{100 * r['echo_rate']:.0f}% | {100 * r['repeat_rate']:.0f}% | "
              f"{r['suggestions']} | {100 * r['grounded']:.1f}% | {100 * r['new']:.1f}% | "
              f"{100 * r['hit']:.1f}% |")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
