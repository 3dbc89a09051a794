"""Teacher generation through transformers (hf) and llama.cpp (llamacpp), side by side.

The same SLIM teacher prompts (ml-100k training histories, the quickstart's wording and
history budget), the same greedy decoding and token cap, one engine after the other in
one process: per engine the wall time, generated tokens per second, and what the answers
are worth -- parse rate (all three steps), cap-hit rate, repeated-line rate, the share
whose step 2 names five distinct categories, the share that echoes the instructions'
own words, and mean answer length. An engine spec ``engine:parallel[:json][:DTYPE]
[:threads=N|auto]`` asks for structured output with ``json`` (methods/slim/structured.py:
a JSON schema the engine turns into a grammar, rendered back into the three steps), for a
dtype (vllm, hf: ``bfloat16``, ``float32``), and for that engine's threads instead of
``--threads`` (``auto``: the engine's own choice; for vLLM's CPU build one core computes,
one schedules). ``--config`` takes the prompt
wording, the teacher's user seed and the prepared data from a run config instead of the
quickstart's (``--data``: an already prepared folder, e.g. a run's prepare stage). The
CPU's lscpu flags are printed too.

Usage (the quickstart's 32 teacher users, ~5 min per engine on 2 quiet cores):
    .venv/bin/python bench/engines.py --model qwen2.5-coder-0.5b --users 32 --out FILE
    .venv/bin/python bench/engines.py --engines llamacpp:8,llamacpp:8:json --max-new-tokens 512
    SLIMREC_VLLM_PYTHON=.venv-vllm/bin/python .venv/bin/python bench/engines.py \
        --config configs/amazon-games.yaml --model qwen2.5-coder-1.5b --max-new-tokens 512 \
        --data bench/runs/amazon-games/stages/prepare-fef329b089b2f7db/data \
        --engines vllm:32:json:bfloat16:threads=auto,vllm:32:json:bfloat16,llamacpp:8:json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import yaml

from slimrec.data import PrepareConfig, PreparedDataset, prepare
from slimrec.data.loaders import DataSource, load_dataset
from slimrec.llm.backends import build_backend
from slimrec.llm.backends.base import ChatRequest, SamplingConfig
from slimrec.machine import describe
from slimrec.methods.slim.parse import parse_rationale
from slimrec.methods.slim.prompts import PromptConfig
from slimrec.methods.slim.rationale_checks import table_rates
from slimrec.methods.slim.structured import render
from slimrec.methods.slim.teach import TeacherConfig, select_users, user_prompts
from slimrec.pipeline.config import RunConfig

QUICKSTART = PromptConfig(
    domain="movies", verb="watched", category_noun="genres", per_category=2, max_items=15,
    hold_out_last=1,
)  # fmt: skip


def run(spec: str, model: str, prompts, users, sampling, threads: int, wording) -> dict:
    engine, parallel, *mode = spec.split(":")
    structured = "json" in mode
    chosen = [m.removeprefix("threads=") for m in mode if m.startswith("threads=")]
    dtypes = [m for m in mode if m != "json" and not m.startswith("threads=")]
    config = TeacherConfig(
        backend=engine, model=model, batch_size=int(parallel), structured=structured,
        threads=(None if chosen[-1] == "auto" else int(chosen[-1])) if chosen else threads,
        prompt=wording, sampling=sampling, dtype=dtypes[0] if dtypes else "auto",
    )  # fmt: skip
    requests = [ChatRequest(f"user {u}", config.messages(p)) for u, p in
                zip(users, prompts, strict=True)]  # fmt: skip
    backend = build_backend(config)
    backend.check()
    try:
        # Start-up (a server, model loading) apart from generation: one short request first.
        start = time.perf_counter()
        short = config.sampling_for_requests().model_copy(update={"max_new_tokens": 4})
        dict(backend.generate(requests[:1], short))
        startup = time.perf_counter() - start
        start = time.perf_counter()
        answers = dict(backend.generate(requests, config.sampling_for_requests()))
        seconds = time.perf_counter() - start
    finally:
        if hasattr(backend, "close"):
            backend.close()
    texts = [answers[i].text for i in range(len(prompts))]
    texts = [(structured and render(t, drop_repeats=False)) or t for t in texts]  # as written
    steps = [parse_rationale(t) for t in texts]
    tokens = [answers[i].completion_tokens for i in range(len(prompts))]
    table = pd.DataFrame({
        "response": texts, "prompt": [json.dumps(r.messages) for r in requests],
        "parsed": [r.complete for r in steps], "step2": [r.categories for r in steps],
        "completion_tokens": tokens,
    })  # fmt: skip
    rates = table_rates(table, sampling.max_new_tokens)
    return {
        "engine": spec, "answers": len(texts), "startup_s": round(startup, 1),
        "seconds": round(seconds, 1),
        "new_tokens": sum(tokens), "new_tok_per_s": round(sum(tokens) / seconds, 2),
        **rates, "answers_text": texts,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engines", default="hf:16,llamacpp:16,llamacpp:16:json")
    ap.add_argument("--template", help="prompt template version (default: the wording's)")
    ap.add_argument("--config", type=Path, help="a run config: its data, wording, user seed")
    ap.add_argument("--data", type=Path, help="a prepared data folder for --config's data")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    wording, seed = QUICKSTART, 0
    if args.config:
        run_config = RunConfig.model_validate(yaml.safe_load(args.config.read_text()))
        wording, seed = run_config.teacher.prompt, run_config.teacher.seed
        if args.data:
            data = PreparedDataset.load(args.data)
        else:
            data = prepare(load_dataset(run_config.data.source), run_config.data.prepare)
    else:
        raw = load_dataset(DataSource(dataset="ml-100k"))
        data = prepare(raw, PrepareConfig(max_users=150, max_seq_len=50))
    users = select_users(data.n_users, args.users, seed)
    if args.template:
        wording = wording.model_copy(update={"version": args.template})
    args.template = wording.version
    prompts = user_prompts(data, users, wording)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens)
    rows = []
    for spec in args.engines.split(","):
        rows.append(run(spec, args.model, prompts, users, sampling, args.threads, wording))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "answers_text"}), flush=True)
    machine = describe()
    print(f"\n{args.model}, template {args.template}, {args.users} prompts, "
          f"{args.max_new_tokens} new tokens max, greedy, {args.threads} threads; "
          f"CPU {machine}\n")  # fmt: skip
    print("| engine:parallel[:json][:dtype] | start-up s | wall s | new tok/s | parsed "
          "| at cap | repeats a line | 5 distinct categories | echoes the prompt "
          "| mean tokens |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    pct = lambda x: f"{100 * x:.0f}%"  # noqa: E731
    for r in rows:
        print(f"| {r['engine']} | {r['startup_s']} | {r['seconds']} | {r['new_tok_per_s']} "
              f"| {pct(r['parse_rate'])} "
              f"| {pct(r['cap_rate'])} | {pct(r['repeat_rate'])} | {pct(r['distinct_rate'])} "
              f"| {pct(r['echo_rate'])} | {r['mean_tokens']:.0f} |")  # fmt: skip
    if args.out:
        args.out.write_text(
            json.dumps(
                {"model": args.model, "template": args.template, "machine": machine, "rows": rows},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
