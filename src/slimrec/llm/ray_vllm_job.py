"""Run by vLLM's interpreter: chat requests through Ray Data's vLLM processor.

:mod:`slimrec.llm.ray_vllm` starts this file with the Python that imports vLLM (vLLM pins
its own torch and transformers, so it may live in an environment of its own where slimrec
is not installed: this file imports nothing of slimrec). It reads one JSON job on stdin:
the requests with their shard and position, the model folder, vLLM's engine settings, the
sampling settings and the Ray cluster. ``ray.data.llm.build_processor`` (Ray >= 2.44)
applies the model's chat template, tokenizes, and runs one vLLM engine per replica over
the rows; results stream back, and each shard is written to the result stream (one JSON
line) as soon as all of its rows are in, so the caller stores finished shards while the
rest are still being answered. Everything else this process or vLLM prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    results = os.fdopen(os.dup(1), "w")  # the result stream; stdout now joins stderr
    os.dup2(2, 1)
    job = json.load(sys.stdin)

    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    cluster = job["ray"]
    if cluster["address"] is None:
        need = int(cluster["replicas"] * cluster["cpus_per_replica"] + 0.999)
        ray.init(num_cpus=max(os.cpu_count() or 1, need), include_dashboard=False)
    else:
        ray.init(address=cluster["address"])
    ray.data.DataContext.get_current().enable_progress_bars = False

    sampling = job["sampling"]  # what the row functions close over travels with each task
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
            # vLLM's Ray metrics import ray.serve, which ray[data] does not install.
            log_engine_metrics=False,
        ),
        preprocess=lambda row: {
            "shard": row["shard"],
            "index": row["index"],
            "messages": json.loads(row["messages"]),
            "sampling_params": sampling,
        },
        postprocess=lambda row: {
            "shard": row["shard"],
            "index": row["index"],
            "text": row["generated_text"],
            "prompt_tokens": row["num_input_tokens"],
            "completion_tokens": row["num_generated_tokens"],
        },
    )
    rows = [
        {"shard": r["shard"], "index": r["index"], "messages": json.dumps(r["messages"])}
        for r in job["rows"]
    ]
    expected: dict[int, int] = {}
    for row in rows:
        expected[row["shard"]] = expected.get(row["shard"], 0) + 1
    got: dict[int, dict[int, dict]] = {s: {} for s in expected}
    for row in processor(ray.data.from_items(rows)).iter_rows():
        shard = int(row["shard"])
        got[shard][int(row["index"])] = {
            "text": row["text"],
            "prompt_tokens": int(row["prompt_tokens"]),
            "completion_tokens": int(row["completion_tokens"]),
        }
        if len(got[shard]) == expected[shard]:
            answers = [got[shard][i] for i in sorted(got[shard])]
            results.write(json.dumps({"shard": shard, "completions": answers}) + "\n")
            results.flush()
            del got[shard]
    ray.shutdown()


if __name__ == "__main__":
    main()
