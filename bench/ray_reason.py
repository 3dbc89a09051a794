"""The student's rationales in one process against Ray Data replicas, side by side (issue 20).

On a prepared dataset, the first N users are answered by the shipped student
(SmolLM2-135M, no adapter: the speed is the base model's) through the pipeline's own
`reason`, once in one process with all the threads given, then on a local Ray cluster
with R replicas of one thread each (the same shards; each shard one generate call on one
replica). Prints users/s, new tokens/s, the ratio to the one-process run, and the share
of answers identical to it, with the CPU's flags.

Usage (~4 min on 2 cores for 64 users):
    .venv/bin/python bench/ray_reason.py --data bench/runs/amazon-games/stages/prepare-*/data \
        --users 64 --threads 2 --replicas 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from slimrec.cluster import RayConfig
from slimrec.llm.backends.base import SamplingConfig
from slimrec.machine import describe
from slimrec.methods.slim.student.reason import ReasonConfig, reason


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="threads of the one-process run")
    ap.add_argument("--replicas", type=int, nargs="+", default=[2])
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--shard-size", type=int, default=16)
    ap.add_argument("--out", type=Path, default=None, help="write the table as JSON here")
    args = ap.parse_args()

    common = {
        "base_model": "smollm2-135m",
        "users": list(range(args.users)),
        "shard_size": args.shard_size,
        "batch_size": args.shard_size,
        "sampling": SamplingConfig(max_new_tokens=args.max_new_tokens),
    }
    variants = [("one process", ReasonConfig(**common, threads=args.threads))]
    for r in args.replicas:
        ray = RayConfig(replicas=r, cpus_per_replica=1)
        variants.append((f"Ray Data, {r} replicas x 1 thread", ReasonConfig(**common, ray=ray)))
    rows, first = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in variants:
            started = time.perf_counter()
            result = reason(args.data, Path(tmp) / f"{len(rows)}.parquet", config)
            seconds = time.perf_counter() - started  # Ray's start-up included
            answers = pd.read_parquet(result["path"])["response"]
            first = answers if first is None else first
            rows.append(
                {
                    "variant": name,
                    "seconds": round(seconds, 1),
                    "users_per_s": round(args.users / seconds, 3),
                    "new_tok_per_s": round(result["completion_tokens"] / seconds, 1),
                    "same_answers": round(float((answers == first).mean()), 3),
                }
            )
    base = rows[0]["seconds"]
    print(f"CPU: {describe()}")
    print("| variant | seconds | users/s | new tok/s | speed-up | same answers |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['seconds']} | {r['users_per_s']} | {r['new_tok_per_s']} "
            f"| {base / r['seconds']:.2f}x | {r['same_answers']:.0%} |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"cpu": describe(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
