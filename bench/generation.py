"""Student generation speed on this machine, side by side (issue 5, ``slimrec reason``).

What: the real student (smollm2-135m, float32) answers real SLIM prompts built from
ml-100k (training part of each history, movies wording), greedy, the same prompts and
the same ``max_new_tokens`` in every mode:

1. one prompt at a time with transformers' ``generate`` (on the first ``--single``
   prompts only: it is the slow reference);
2. plain batched ``generate`` (left-padded, batch ``--plain-batch``, fp32);
3. ours: :class:`slimrec.llm.backends.hf.HFBackend` (= ``slimrec reason``): longest
   prompts first, KV cache written into preallocated room, finished rows dropped from
   the batch and replaced by waiting prompts, the prompts' common opening run once;
4. ours without that shared prefix (every row prefills its whole prompt), to show what
   the sharing buys;

and the compute bound: measured matmul FLOP/s (fp32 and bf16, here) / (2 x parameters),
in tokens per second. Per mode: wall time, generated tokens/s, all tokens processed
(prompt + generated)/s, parse rate (all three steps), and how many answers are token-for-
token those of mode 1. Also the decode-step throughput per batch size on a synthetic
cache, to pick the batch size. Prints Markdown; ``--out`` also writes JSON.

Usage (about 8 minutes on 2 quiet cores):
    .venv/bin/python bench/generation.py --prompts 64 --max-new-tokens 96 --threads 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from slimrec.data import PrepareConfig, PreparedDataset, prepare
from slimrec.data.loaders import DataSource, load_dataset
from slimrec.llm.backends.base import ChatRequest, SamplingConfig
from slimrec.llm.backends.hf import HFBackend
from slimrec.llm.decode import _new_cache, common_prefix_length
from slimrec.machine import describe
from slimrec.methods.slim.parse import parse_rationale
from slimrec.methods.slim.prompts import PromptConfig
from slimrec.methods.slim.teach import user_prompts

MOVIES = PromptConfig(domain="movies", verb="watched", category_noun="genres")


def flops(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 1.0) -> float:
    """Measured FLOP/s of ``[m,k] x [n,k]^T`` (nn.Linear's layout)."""
    x, w = torch.randn(m, k, dtype=dtype), torch.randn(n, k, dtype=dtype)
    F.linear(x, w)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        F.linear(x, w)
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - start)


def cut(tokens: list[int], stops: set[int]) -> list[int]:
    """New tokens up to and including the first stop token."""
    out = []
    for t in tokens:
        out.append(t)
        if t in stops:
            break
    return out


def plain_generate(model, tok, prompts, n, stops, batch) -> list[list[int]]:
    """transformers' generate over left-padded batches in the given order."""
    outs = []
    for s in range(0, len(prompts), batch):
        group = prompts[s : s + batch]
        width = max(len(p) for p in group)
        ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in group])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in group])
        with torch.inference_mode():
            gen = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=n,
                do_sample=False,
                eos_token_id=sorted(stops),
                pad_token_id=tok.pad_token_id,
            )
        outs += [cut(row[width:].tolist(), stops) for row in gen]
    return outs


def decode_sweep(model, sizes, width=400, steps=3) -> dict[int, float]:
    """Decode tokens/s per batch size on a random KV cache ``width`` tokens wide."""
    cfg = model.config
    kv_heads, head_dim = cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    result = {}
    for b in sizes:
        cache = _new_cache()
        with torch.inference_mode():
            for layer in range(cfg.num_hidden_layers):
                k = torch.randn(b, kv_heads, width, head_dim)
                cache.update(k, torch.randn_like(k), layer)
            mask = torch.ones(b, width, dtype=torch.long)
            last = torch.randint(100, 1000, (b,))
            times = []
            for s in range(steps + 1):
                mask = torch.cat([mask, mask[:, :1]], dim=1)
                start = time.perf_counter()
                out = model(
                    input_ids=last[:, None],
                    attention_mask=mask,
                    position_ids=torch.full((b, 1), width + s),
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
                last = out.logits[:, -1].argmax(-1)
                times.append(time.perf_counter() - start)
        result[b] = b / min(times[1:])  # best of the steps after a warm-up one
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=64, help="ml-100k users (first N).")
    ap.add_argument("--single", type=int, default=6, help="Prompts run one at a time.")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--plain-batch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64, help="Our batch size.")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="Also write the numbers as JSON.")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, t_new = args.prompts, args.max_new_tokens
    info = {
        "date": datetime.date.today().isoformat(),
        "cpu": describe(),
        "torch": torch.__version__,
        "threads": args.threads,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(info))

    peak = {str(dt).split(".")[1]: flops(1024, 1024, 1024, dt) for dt in (torch.float32,)}
    peak["bfloat16"] = flops(256, 576, 1536, torch.bfloat16)  # slow path: keep it short
    decode_shape = {"float32": flops(args.batch, 576, 1536, torch.float32)}
    print(f"matmul GFLOP/s: { ({k: round(v / 1e9, 1) for k, v in peak.items()}) }", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        raw = load_dataset(DataSource(dataset="ml-100k"))
        data = prepare(raw, PrepareConfig()).save(Path(tmp) / "ml-100k")
        dataset = PreparedDataset.load(data)
    prompts = user_prompts(dataset, range(n), MOVIES)
    backend = HFBackend("smollm2-135m", batch_size=args.batch, dtype="float32", progress=False)
    backend.check()
    model, tok, stops = backend._model, backend._tokenizer, backend._stop_ids
    ids = [backend.encode(ChatRequest(str(i), p.messages())) for i, p in enumerate(prompts)]
    params = sum(p.numel() for p in model.parameters())
    prompt_tokens = [len(p) for p in ids]
    print(f"{n} prompts, {min(prompt_tokens)}-{max(prompt_tokens)} tokens; {params:,} params")

    def text(tokens):
        return tok.decode([x for x in tokens if x not in stops], skip_special_tokens=True)

    modes: dict[str, dict] = {}

    def record(name, outs, seconds, idx):
        gen = sum(len(o) for o in outs)
        seen = gen + sum(prompt_tokens[i] for i in idx)
        parsed = sum(parse_rationale(text(o)).complete for o in outs)
        ref = modes["single"]["outs"] if modes else outs
        same = sum(outs[k] == ref[k] for k in range(min(args.single, len(outs))))
        modes[name] = {
            "outs": outs,
            "prompts": len(outs),
            "seconds": round(seconds, 1),
            "generated_tokens": gen,
            "gen_tok_s": gen / seconds,
            "all_tok_s": seen / seconds,
            "parse_rate": parsed / len(outs),
            "same_as_single": f"{same}/{min(args.single, len(outs))}",
        }
        print(name, {k: v for k, v in modes[name].items() if k != "outs"}, flush=True)

    start = time.perf_counter()
    single = [plain_generate(model, tok, [p], t_new, stops, 1)[0] for p in ids[: args.single]]
    record("single", single, time.perf_counter() - start, range(args.single))

    start = time.perf_counter()
    plain = plain_generate(model, tok, ids, t_new, stops, args.plain_batch)
    record("plain_batched", plain, time.perf_counter() - start, range(n))

    for name, share in (("ours", True), ("ours_no_prefix", False)):
        backend.share_prefix = share
        start = time.perf_counter()
        ours = backend._decode(ids, SamplingConfig(max_new_tokens=t_new))
        record(name, [o for o, _ in ours], time.perf_counter() - start, range(n))
    shared = common_prefix_length(ids)
    info["shared_prefix_tokens"] = shared
    info["prompt_tokens"] = sum(prompt_tokens)
    print(
        f"shared prefix: {shared} tokens; prefill {sum(prompt_tokens)} -> "
        f"{sum(prompt_tokens) - (n - 1) * shared} prompt tokens",
        flush=True,
    )

    sweep = decode_sweep(model, [16, 32, 64, 128])
    print("decode tok/s by batch size:", {b: round(v, 1) for b, v in sweep.items()})
    bound = {k: v / (2 * params) for k, v in peak.items()}
    print_table(info, args, modes, bound, sweep, decode_shape, peak, params, prompt_tokens)
    if args.out:
        for m in modes.values():
            m.pop("outs")
        blob = {"info": info, "modes": modes, "bound_tok_s": bound, "decode_sweep": sweep}
        args.out.write_text(json.dumps(blob, indent=2))


def print_table(info, args, modes, bound, sweep, decode_shape, peak, params, prompt_tokens):
    names = {
        "single": "one prompt at a time, `generate`",
        "plain_batched": f"plain batched `generate`, batch {args.plain_batch}",
        "ours": f"ours (`slimrec reason`), batch {args.batch}, refill, shared prefix",
        "ours_no_prefix": f"ours without the shared prefix, batch {args.batch}, refill",
    }
    b32 = bound["float32"]
    print(f"\n{info['date']}, {info['cpu']}, torch {info['torch']}, {args.threads} thread(s),")
    print(f"load average at start {tuple(round(x, 1) for x in info['load_average'])}")
    print(
        f"{args.prompts} ml-100k prompts ({min(prompt_tokens)}-{max(prompt_tokens)} tokens, "
        f"{info['shared_prefix_tokens']} of them shared by all),"
    )
    print(f"max_new_tokens {args.max_new_tokens}, greedy, float32, {params / 1e6:.1f}M params\n")
    print(
        "| mode | prompts | s | generated tok/s | all tok/s | share of fp32 bound "
        "(generated; all) | parsed | same tokens as one-at-a-time |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key, label in names.items():
        m = modes[key]
        share = m["gen_tok_s"] / b32
        print(
            f"| {label} | {m['prompts']} | {m['seconds']} | {m['gen_tok_s']:.1f} | "
            f"{m['all_tok_s']:.1f} | {share:.0%}; {m['all_tok_s'] / b32:.0%} | "
            f"{m['parse_rate']:.0%} | {m['same_as_single']} |"
        )
    print(
        f"\ncompute bound: fp32 {peak['float32'] / 1e9:.1f} GFLOP/s -> {b32:.1f} tok/s; "
        f"bf16 {peak['bfloat16'] / 1e9:.2f} GFLOP/s -> {bound['bfloat16']:.2f} tok/s; "
        f"decode-shaped fp32 matmul [{args.batch}x576]x[576x1536]: "
        f"{decode_shape['float32'] / 1e9:.1f} GFLOP/s"
    )
    print("decode tok/s by batch size (KV width 400):", {b: round(v, 1) for b, v in sweep.items()})
    gain = modes["ours"]["gen_tok_s"] / modes["ours_no_prefix"]["gen_tok_s"]
    speed = {k: m["gen_tok_s"] for k, m in modes.items()}
    print(
        f"ours / plain batched: {speed['ours'] / speed['plain_batched']:.2f}x; shared prefix "
        f"on / off: {gain:.2f}x; ours / one at a time: {speed['ours'] / speed['single']:.1f}x"
    )


if __name__ == "__main__":
    main()
