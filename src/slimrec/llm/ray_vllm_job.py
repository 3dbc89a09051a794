"""Run by vLLM's interpreter: chat requests through Ray Data's vLLM processor.

:mod:`slimrec.llm.ray_vllm` starts this file with the Python that imports vLLM (vLLM pins
its own torch and transformers, so it may live in an environment of its own where slimrec
is not installed: this file imports nothing of slimrec). It reads one JSON job on stdin:
the requests with their shard and position, the model folder, vLLM's engine settings, the
sampling settings and the Ray cluster. ``ray.data.llm.build_processor`` (Ray 2.60) runs
one vLLM engine per replica over the rows; results stream back, and each shard is written
to the result stream (one JSON line) as soon as all of its rows are in, so the caller
stores finished shards while the rest are still being answered. Everything else this
process or vLLM prints goes to stderr.

The answers must be the vLLM server's (the two paths share a model id and cache key), so
this side does what the server does before and after the engine, instead of Ray's own
stages: the prompt as the caller tokenized it (slimrec.llm.chat: the chat template, no
added special tokens, since Ray's tokenizer would add a second BOS for models whose
template starts with one; message text as plain text, which the server's own rendering
equals unless a message spells one of the model's special tokens), the model's
generation defaults for settings the request leaves open (repetition penalty, top-k,
min-p, as the server reads them from generation_config.json), vLLM's own detokenized text,
and the finish reason from the last token.
"""

from __future__ import annotations

import json
import os
import sys

# What vLLM's server takes from a model's generation_config.json when a request is silent.
GENERATION_DEFAULTS = ("repetition_penalty", "top_k", "min_p", "temperature", "top_p")


def main() -> None:
    results = os.fdopen(os.dup(1), "w")  # the result stream; stdout now joins stderr
    os.dup2(2, 1)
    job = json.load(sys.stdin)

    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig
    from transformers import AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(job["model"])
    try:
        defaults = GenerationConfig.from_pretrained(job["model"]).to_diff_dict()
    except OSError:  # no generation_config.json: vLLM's own defaults, as the server
        defaults = {}
    sampling = dict(job["sampling"])  # the row functions close over it, not over the job
    for key in GENERATION_DEFAULTS:
        if key not in sampling and defaults.get(key) is not None:
            sampling[key] = defaults[key]
    stops = defaults.get("eos_token_id", tokenizer.eos_token_id)
    stops = set(stops if isinstance(stops, list) else [stops]) | {tokenizer.eos_token_id}
    cap = sampling["max_tokens"]

    # Tokenised by slimrec.llm.chat in the caller: message text there stays plain text.
    rows = [
        {"shard": r["shard"], "index": r["index"], "tokenized_prompt": r["prompt"]}
        for r in job["rows"]
    ]

    cluster = job["ray"]
    if cluster["address"] is None:
        # One CPU beyond the replicas' for Ray Data's own map tasks around the engines.
        need = int(cluster["replicas"] * cluster["cpus_per_replica"] + 0.999) + 1
        # As slimrec.cluster.LOCAL_RAY_SYSTEM (this file imports nothing of slimrec): a
        # worker slow to start on a loaded machine is waited for, not given up on.
        ray.init(
            num_cpus=max(os.cpu_count() or 1, need),
            include_dashboard=False,
            _system_config={"worker_register_timeout_seconds": 600},
        )
    else:
        ray.init(address=cluster["address"])
    ray.data.DataContext.get_current().enable_progress_bars = False

    bundle = {"CPU": cluster["cpus_per_replica"]}
    if cluster["gpus_per_replica"]:
        bundle["GPU"] = cluster["gpus_per_replica"]
    processor = build_processor(
        vLLMEngineProcessorConfig(
            model_source=job["model"],
            engine_kwargs=job["engine_kwargs"],
            batch_size=job["batch_size"],
            concurrency=cluster["replicas"],
            placement_group_config={"bundles": [bundle]},
            chat_template_stage=False,  # done above, as the server does it
            tokenize_stage=False,
            detokenize_stage=False,  # keep vLLM's own text, as the server returns it
            # vLLM's Ray metrics import ray.serve, which ray[data] does not install.
            log_engine_metrics=False,
        ),
        preprocess=lambda row: {
            "shard": row["shard"],
            "index": row["index"],
            "tokenized_prompt": row["tokenized_prompt"],
            "sampling_params": sampling,
        },
        postprocess=lambda row: {
            "shard": row["shard"],
            "index": row["index"],
            "text": row["generated_text"],
            "prompt_tokens": row["num_input_tokens"],
            "completion_tokens": row["num_generated_tokens"],
            "last_token": int(row["generated_tokens"][-1]) if row["num_generated_tokens"] else -1,
        },
    )
    expected: dict[int, int] = {}
    for row in rows:
        expected[row["shard"]] = expected.get(row["shard"], 0) + 1
    got: dict[int, dict[int, dict]] = {s: {} for s in expected}
    for row in processor(ray.data.from_items(rows)).iter_rows():
        shard, n = int(row["shard"]), int(row["completion_tokens"])
        got[shard][int(row["index"])] = {
            "text": row["text"],
            "prompt_tokens": int(row["prompt_tokens"]),
            "completion_tokens": n,
            # As vLLM reports it: cut at the cap unless the last token ended the answer.
            "finish_reason": "length" if n >= cap and row["last_token"] not in stops else "stop",
        }
        if len(got[shard]) == expected[shard]:
            answers = [got[shard][i] for i in sorted(got[shard])]
            results.write(json.dumps({"shard": shard, "completions": answers}) + "\n")
            results.flush()
            del got[shard]
    ray.shutdown()


if __name__ == "__main__":
    main()
