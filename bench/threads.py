"""Student decoding with one thread per core, one thread, and slimrec's default, while
other processes keep some cores busy (slimrec.machine.default_threads).

torch's threads wait for each other at every operation; when a core is taken by other
work, the waiting dominates. For each load (``--busy K``: K processes spinning beside
the measurement) the same greedy answers are timed with ``--threads`` counts and with
``threads=None`` (slimrec's default: the cores the others leave idle). One run, side by
side; prints Markdown, ``--out`` writes JSON.

    .venv/bin/python bench/threads.py --busy 0 1 2 --users 16 --out bench/results/threads.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from slimrec import machine
from slimrec.llm.backends.base import ChatRequest, SamplingConfig
from slimrec.llm.backends.hf import HFBackend

SPIN = "print('ready', flush=True)\nwhile True: pass"


def requests(n: int) -> list[ChatRequest]:
    return [
        ChatRequest(
            key=f"user {i}",
            messages=[
                {
                    "role": "user",
                    "content": f"List five movie genres a viewer of film number {i} would "
                    "like, with two titles each.",
                }
            ],
        )
        for i in range(n)
    ]


def timed(threads: int | None, users: int, new_tokens: int) -> dict:
    machine._chosen.clear()  # measure the load now, not reuse an earlier choice
    backend = HFBackend("smollm2-135m", threads=threads, batch_size=users, progress=False)
    sampling = SamplingConfig(max_new_tokens=new_tokens, temperature=0.0)
    list(backend.generate(requests(2), sampling))  # load the model, warm the kernels
    start = time.perf_counter()
    answers = dict(backend.generate(requests(users), sampling))
    seconds = time.perf_counter() - start
    tokens = sum(a.completion_tokens for a in answers.values())
    return {
        "threads": "default" if threads is None else threads,
        "torch_threads": torch.get_num_threads(),
        "seconds": round(seconds, 2),
        "tokens": tokens,
        "tok_s": round(tokens / seconds, 1),
        "texts": [answers[i].text for i in range(users)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, nargs="+", default=[machine.cores() or 1, 1])
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    for busy in args.busy:
        spinners = [
            subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
            for _ in range(busy)
        ]
        try:
            for spinner in spinners:
                assert spinner.stdout is not None
                spinner.stdout.readline()
            measured = machine.busy_cores(seconds=0.5)
            for threads in [*args.threads, None]:
                row = timed(threads, args.users, args.new_tokens)
                rows.append({"busy": busy, "busy_measured": measured, **row})
                print(f"busy {busy}: {row['threads']} -> {row['seconds']} s", file=sys.stderr)
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
    reference = {r["busy"]: r["texts"] for r in rows if r["threads"] == 1}
    print(f"{machine.describe()}; {args.users} answers of {args.new_tokens} tokens, greedy\n")
    print(
        "| spinning beside it | cores busy (measured) | threads | torch threads | s | tok/s "
        "| same answers as 1 thread |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        same = sum(a == b for a, b in zip(r["texts"], reference[r["busy"]], strict=True))
        r["same_as_one_thread"] = same
        print(
            f"| {r['busy']} | {r['busy_measured']:.1f} | {r['threads']} | {r['torch_threads']} "
            f"| {r['seconds']} | {r['tok_s']} | {same}/{len(r['texts'])} |"
        )
    if args.out:
        stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        record = {
            "date": stamp,
            "machine": machine.hardware(),
            "args": vars(args) | {"out": str(args.out)},
            "rows": rows,
        }
        args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
