"""The student through slimrec's decoder and through vLLM, side by side (issue 20).

The shipped student (SmolLM2-135M-Instruct) answers the same SLIM prompts (ml-100k
training histories, the quickstart's wording), greedy, the same token cap, one engine
after the other in one process: slimrec's batched decoder over transformers (fp32, what
`slimrec reason` runs), then a vLLM server (its CPU build from .venv-vllm) in float32 and
in bfloat16. Per engine: wall time (vLLM's start-up reported apart), new tokens/s, and the
share of answers identical to slimrec's. The CPU's lscpu flags are printed too.

Usage (~5 min on 2 quiet cores):
    SLIMREC_VLLM_PYTHON=.venv-vllm/bin/python .venv/bin/python bench/student_engines.py \
        --prompts 64 --max-new-tokens 96 --out FILE
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import QUICKSTART, cpu_flags

from slimrec.data import PrepareConfig, prepare
from slimrec.data.loaders import DataSource, load_dataset
from slimrec.llm.backends.base import ChatRequest, SamplingConfig
from slimrec.llm.backends.hf import HFBackend
from slimrec.llm.backends.vllm import VLLMBackend
from slimrec.methods.slim.teach import user_prompts


def timed(backend, requests, sampling) -> tuple[dict, float, float]:
    """(answers, start-up seconds, generation seconds)."""
    start = time.perf_counter()
    backend.generate([requests[0]], SamplingConfig(max_new_tokens=1)).__next__()
    ready = time.perf_counter()
    answers = dict(backend.generate(requests, sampling))
    return answers, ready - start, time.perf_counter() - ready


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    data = prepare(load_dataset(DataSource(dataset="ml-100k")), PrepareConfig(max_users=150))
    users = list(range(min(args.prompts, data.n_users)))
    prompts = user_prompts(data, users, QUICKSTART)
    requests = [ChatRequest(f"user {u}", p.messages()) for u, p in zip(users, prompts, strict=True)]
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens)
    engines = {
        "slimrec decoder, fp32": lambda: HFBackend(
            "smollm2-135m", batch_size=args.batch, threads=args.threads, progress=False
        ),
        "vLLM, fp32": lambda: VLLMBackend("smollm2-135m", dtype="float32", concurrency=args.batch),
        "vLLM, bf16": lambda: VLLMBackend("smollm2-135m", dtype="bfloat16", concurrency=args.batch),
    }
    rows, reference = [], None
    for name, make in engines.items():
        backend = make()
        answers, startup, seconds = timed(backend, requests, sampling)
        if hasattr(backend, "close"):
            backend.close()
        texts = [answers[i].text for i in range(len(requests))]
        reference = reference or texts
        tokens = sum(a.completion_tokens for a in answers.values())
        rows.append({
            "engine": name, "startup_s": round(startup, 1), "seconds": round(seconds, 1),
            "new_tokens": tokens, "new_tok_per_s": round(tokens / seconds, 1),
            "same_as_slimrec": sum(map(str.__eq__, texts, reference)) / len(texts),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    flags = cpu_flags()
    print(f"\nSmolLM2-135M, {len(requests)} prompts, {args.max_new_tokens} new tokens max, "
          f"greedy; CPU flags: {flags}\n")  # fmt: skip
    print("| engine | start-up s | generation s | new tok/s | answers identical to slimrec's |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['engine']} | {r['startup_s']} | {r['seconds']} | {r['new_tok_per_s']} | "
              f"{100 * r['same_as_slimrec']:.0f}% |")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"cpu_flags": flags, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
