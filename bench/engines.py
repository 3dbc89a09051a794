"""Teacher generation through transformers (hf) and llama.cpp (llamacpp), side by side.

The same SLIM teacher prompts (ml-100k training histories, the quickstart's wording and
history budget), the same greedy decoding and token cap, one engine after the other in
one process: per engine the wall time, generated tokens per second, parse rate (all
three steps) and mean answer length. The CPU's lscpu flags are printed with the table.

Usage (the quickstart's 32 teacher users, ~5 min on 2 quiet cores):
    .venv/bin/python bench/engines.py --model qwen2.5-coder-0.5b --users 32 --out FILE
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

from slimrec.data import PrepareConfig, prepare
from slimrec.data.loaders import DataSource, load_dataset
from slimrec.llm.backends import build_backend
from slimrec.llm.backends.base import ChatRequest, SamplingConfig
from slimrec.methods.slim.parse import parse_rationale
from slimrec.methods.slim.prompts import PromptConfig
from slimrec.methods.slim.teach import TeacherConfig, select_users, user_prompts

QUICKSTART = PromptConfig(
    domain="movies", verb="watched", category_noun="genres", per_category=2, max_items=15,
    hold_out_last=1,
)  # fmt: skip


def cpu_flags() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    flags = next(
        (ln.split(":", 1)[1].split() for ln in out.splitlines() if ln.startswith("Flags")), []
    )
    keep = [f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")]
    return " ".join(keep)


def run(engine: str, model: str, requests, sampling, parallel: int, threads: int) -> dict:
    config = TeacherConfig(backend=engine, model=model, batch_size=parallel, threads=threads)
    backend = build_backend(config)
    backend.check()
    start = time.perf_counter()
    answers = dict(backend.generate(requests, sampling))
    seconds = time.perf_counter() - start
    tokens = sum(a.completion_tokens for a in answers.values())
    parsed = sum(parse_rationale(a.text).complete for a in answers.values())
    if hasattr(backend, "close"):
        backend.close()
    return {
        "engine": engine, "parallel": parallel, "answers": len(answers),
        "seconds": round(seconds, 1), "new_tokens": tokens,
        "new_tok_per_s": round(tokens / seconds, 2), "parse_rate": parsed / len(answers),
        "mean_tokens": tokens / len(answers),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engines", default="hf:16,llamacpp:16,llamacpp:4")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    raw = load_dataset(DataSource(dataset="ml-100k"))
    data = prepare(raw, PrepareConfig(max_users=150, max_seq_len=50))
    users = select_users(data.n_users, args.users, 0)
    requests = [ChatRequest(f"user {u}", p.messages()) for u, p in
                zip(users, user_prompts(data, users, QUICKSTART), strict=True)]  # fmt: skip
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens)
    rows = []
    for spec in args.engines.split(","):
        engine, parallel = spec.split(":")
        rows.append(run(engine, args.model, requests, sampling, int(parallel), args.threads))
        print(json.dumps(rows[-1]), flush=True)
    flags = cpu_flags()
    cpu = platform.processor() or platform.machine()
    print(f"\n{args.model}, {args.users} prompts, {args.max_new_tokens} new tokens max, greedy, "
          f"{args.threads} threads; CPU {cpu}: {flags}\n")  # fmt: skip
    print("| engine | parallel | wall s | new tok/s | parsed | mean tokens |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['engine']} | {r['parallel']} | {r['seconds']} | {r['new_tok_per_s']} | "
              f"{100 * r['parse_rate']:.0f}% | {r['mean_tokens']:.0f} |")  # fmt: skip
    if args.out:
        args.out.write_text(
            json.dumps({"model": args.model, "cpu_flags": flags, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
