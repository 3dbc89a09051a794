"""The distilled student of a run under other decoding settings, side by side (issues 17, 20).

Takes a run folder that has a distill stage (e.g. bench/runs/amazon-games), asks its
student for the first N users' rationales under each variant (engine, dtype, token cap)
through the pipeline's own `reason` (optionally with no n-gram repeated, the decoder's
loop breaker, or held to the three steps: `structured`), and prints per variant: parse
rate, share at the cap, share repeating a line, share echoing the instructions, share
with five distinct step-2 names, mean tokens, step 3's suggestions found in the catalog
and new to the user, new tokens/s, and the share of answers identical to the first
variant. lscpu flags are printed with the table.

Usage (~3 min per variant for 96 users on 2 cores, vLLM computing on one):
    SLIMREC_DATA_DIR=../shared/data SLIMREC_VLLM_PYTHON=$PWD/.venv-vllm/bin/python \
        .venv/bin/python bench/student_cap.py --run bench/runs/amazon-games --users 96 \
        --variant vllm:float32:192 --variant vllm:float32:256 --variant vllm:bfloat16:256
    .venv/bin/python bench/student_cap.py --run runs/quickstart --users 64 \
        --variant hf:float32:192 --variant hf:float32:192:0:structured
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from slimrec.config import load_yaml
from slimrec.data import PreparedDataset
from slimrec.machine import describe
from slimrec.methods.slim.grounding import run_grounding
from slimrec.methods.slim.rationale_checks import table_rates
from slimrec.methods.slim.student.reason import ReasonConfig, reason
from slimrec.pipeline.config import RunConfig


def stage_folder(run: Path, name: str) -> Path:
    info = json.loads((run / "stages.json").read_text(encoding="utf-8"))
    folders = [s["folder"] for s in info["stages"] if s["name"] == name]
    if not folders:
        sys.exit(f"{run}/stages.json has no {name} stage: run the pipeline that far first")
    return run / folders[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--users", type=int, default=96)
    ap.add_argument(
        "--variant",
        action="append",
        required=True,
        help="engine:dtype:cap[:no_repeat_ngram[:structured]]",
    )
    ap.add_argument("--out", type=Path, help="write the table as JSON here")
    args = ap.parse_args()
    config = load_yaml(RunConfig, args.run / "config.yaml")
    data = stage_folder(args.run, "prepare") / "data"
    adapter = stage_folder(args.run, "distill") / "adapter"
    dataset = PreparedDataset.load(data)
    rows, reference, answers = [], None, {}
    for variant in args.variant:
        engine, dtype, cap, *rest = variant.split(":")
        sampling = {"max_new_tokens": int(cap), "no_repeat_ngram": int(rest[0]) if rest else 0}
        cfg = ReasonConfig(
            base_model=config.student.base_model,
            adapter=str(adapter),
            prompt=config.teacher.prompt,
            engine=engine,
            dtype=dtype,
            structured=rest[1:] == ["structured"],
            users=list(range(args.users)),
            sampling=config.reason.sampling.model_copy(update=sampling),
        )
        with tempfile.TemporaryDirectory() as tmp:
            result = reason(data, Path(tmp), cfg, progress=False)
            frame = pd.read_parquet(result["path"])
        texts = frame["response"].tolist()
        answers[variant] = texts
        reference = reference or texts
        rates = {k: round(v, 3) for k, v in table_rates(frame, int(cap)).items()}
        found = run_grounding(frame, dataset, config.teacher.prompt.hold_out_last)
        rates |= {"grounded": round(found.grounded_share, 3), "new": round(found.new_share, 3)}
        rows.append({
            "variant": variant, **rates, "tok_per_s": result["tokens_per_s"],
            "same_as_first": round(sum(map(str.__eq__, texts, reference)) / len(texts), 3),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.users} users of {args.run}; CPU: {describe()}")
    print("| " + " | ".join(rows[0]) + " |")
    print("|---|" + "---:|" * (len(rows[0]) - 1))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
    if args.out:
        result = {"rows": rows, "machine": describe(), "answers": answers}
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
