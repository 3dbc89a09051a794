"""The student through slimrec's decoder, llama.cpp and vLLM, side by side (issue 20).

The student answers the same SLIM prompts, greedy, the same token cap, one engine after
the other in one process. Without ``--run`` it is the shipped SmolLM2-135M-Instruct on
the quickstart's wording (ml-100k training histories); with ``--run`` it is that run's
distilled student (base plus its LoRA adapter) on the run's own prompts. Engines:
slimrec's batched decoder over transformers (fp32, what `slimrec reason` runs), llama.cpp
on the shipped 4-bit GGUF (the adapter applied by llama.cpp, slimrec.llm.gguf_lora), and
with ``--vllm`` a vLLM server (its CPU build from .venv-vllm) in float32 and bfloat16.
Each engine answers all prompts batched, and with ``--single N`` also the first N one at
a time (what `slimrec serve` asks for a new history). Per row: wall time (start-up apart),
new tokens/s, seconds per answer, and the share of answers identical to the first row's.
The CPU's lscpu flags are printed too.

Usage (~5 min on 2 quiet cores):
    SLIMREC_VLLM_PYTHON=.venv-vllm/bin/python .venv/bin/python bench/student_engines.py \
        --prompts 64 --max-new-tokens 96 --vllm --out FILE
    .venv/bin/python bench/student_engines.py --run runs/amazon-office --prompts 32 \
        --max-new-tokens 256 --single 8 --threads 1
    .venv/bin/python bench/student_engines.py --run RUN --prompts 256 --max-new-tokens 256 \
        --vllm-only --vllm-threads 0 2     # vLLM's core choice against both cores computing
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import QUICKSTART

from slimrec.data import PrepareConfig, PreparedDataset, prepare
from slimrec.data.loaders import DataSource, load_dataset
from slimrec.llm.backends.base import ChatRequest, SamplingConfig
from slimrec.llm.backends.hf import HFBackend
from slimrec.llm.backends.llamacpp import LlamaCppBackend
from slimrec.llm.backends.vllm import VLLMBackend
from slimrec.machine import describe
from slimrec.methods.slim.teach import user_prompts


def timed(backend, requests, sampling, one_at_a_time: bool) -> tuple[dict, float, float]:
    """(answers, start-up seconds, generation seconds)."""
    start = time.perf_counter()
    backend.generate([requests[0]], SamplingConfig(max_new_tokens=1)).__next__()
    ready = time.perf_counter()
    if one_at_a_time:
        answers = {i: next(backend.generate([r], sampling))[1] for i, r in enumerate(requests)}
    else:
        answers = dict(backend.generate(requests, sampling))
    return answers, ready - start, time.perf_counter() - ready


def run_prompts(run: Path, n: int):
    """(base model, adapter, prompts) of a pipeline run's distilled student."""
    from slimrec.config import load_yaml
    from slimrec.pipeline.config import RunConfig

    stages = json.loads((run / "stages.json").read_text())["stages"]
    folder = {s["name"]: run / s["folder"] for s in stages}
    config = load_yaml(RunConfig, run / "config.yaml")
    data = PreparedDataset.load(folder["prepare"] / "data")
    users = list(range(min(n, data.n_users)))
    prompts = user_prompts(data, users, config.teacher.prompt)
    return config.student.base_model, str(folder["distill"] / "adapter"), prompts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a pipeline run whose distilled student to use")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--slots", type=int, default=8, help="llama.cpp's parallel sequences")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--single", type=int, default=0, help="also answer N prompts one at a time")
    ap.add_argument("--vllm", action="store_true", help="add vLLM fp32 and bf16")
    ap.add_argument(
        "--vllm-threads",
        type=int,
        nargs="*",
        default=[],
        help="also vLLM bf16 computing on this many cores, 0 for its own choice (which keeps "
        "one core for its scheduler; reason.threads sets it)",
    )
    ap.add_argument(
        "--vllm-only", action="store_true", help="leave out slimrec's decoder and llama.cpp"
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.run:
        base, adapter, prompts = run_prompts(args.run, args.prompts)
    else:
        data = prepare(load_dataset(DataSource(dataset="ml-100k")), PrepareConfig(max_users=150))
        base, adapter = "smollm2-135m", None
        prompts = user_prompts(data, list(range(min(args.prompts, data.n_users))), QUICKSTART)
    requests = [ChatRequest(f"user {i}", p.messages()) for i, p in enumerate(prompts)]
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens)
    engines = {}
    if not args.vllm_only:
        engines["slimrec decoder, fp32"] = lambda n: HFBackend(
            base, adapter=adapter, batch_size=n, threads=args.threads, progress=False
        )
        engines["llama.cpp, 4-bit GGUF"] = lambda n: LlamaCppBackend(
            base, adapter=adapter, parallel=min(n, args.slots), threads=args.threads
        )
    if args.vllm:
        engines["vLLM, fp32"] = lambda n: VLLMBackend(
            base, adapter=adapter, dtype="float32", concurrency=n
        )
        engines["vLLM, bf16"] = lambda n: VLLMBackend(
            base, adapter=adapter, dtype="bfloat16", concurrency=n
        )
    for threads in args.vllm_threads:
        name = f"vLLM, bf16, {threads or 'its own'} compute threads"
        engines[name] = lambda n, t=threads: VLLMBackend(
            base, adapter=adapter, dtype="bfloat16", concurrency=n, threads=t or None
        )
    modes = [("batched", requests, args.batch)]
    if args.single:
        modes.append(("one at a time", requests[: args.single], 1))
    rows, reference = [], {}
    for mode, asked, width in modes:
        for name, make in engines.items():
            backend = make(width)
            answers, startup, seconds = timed(backend, asked, sampling, width == 1)
            if hasattr(backend, "close"):
                backend.close()
            texts = [answers[i].text for i in range(len(asked))]
            reference.setdefault(mode, texts)
            tokens = sum(a.completion_tokens for a in answers.values())
            rows.append({
                "engine": name, "mode": mode, "prompts": len(asked), "model": backend.model_id,
                "startup_s": round(startup, 1), "seconds": round(seconds, 1),
                "new_tokens": tokens, "new_tok_per_s": round(tokens / seconds, 1),
                "s_per_answer": round(seconds / len(asked), 2),
                "same_as_first": sum(map(str.__eq__, texts, reference[mode])) / len(texts),
                "answers": texts,
            })  # fmt: skip
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "answers"}), flush=True)
    flags = describe()
    print(f"\n{base}{' + ' + adapter if adapter else ''}, {args.max_new_tokens} new tokens max, "
          f"greedy, {args.threads} threads; CPU: {flags}\n")  # fmt: skip
    print("| engine | mode | prompts | start-up s | generation s | new tok/s | s per answer "
          "| identical to the first row |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['engine']} | {r['mode']} | {r['prompts']} | {r['startup_s']} | "
              f"{r['seconds']} | {r['new_tok_per_s']} | {r['s_per_answer']} | "
              f"{100 * r['same_as_first']:.0f}% |")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"machine": flags, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
