"""Chat requests answered by Ray Data's vLLM processor (``ray.data.llm``), shard by shard.

Where vLLM is installed, Ray Data's own LLM processor is how its users batch a model over
a cluster: one vLLM engine per replica (CPUs or GPUs declared), the rows streamed through
them (Moritz et al., "Ray", OSDI 2018; vLLM: Kwon et al., SOSP 2023). vLLM pins its own
torch and transformers, so it may live in an interpreter of its own (``$SLIMREC_VLLM_PYTHON``,
made by ``scripts/vllm-env.sh`` with ``ray[data]`` beside it): the work runs there, in
:mod:`slimrec.llm.ray_vllm_job`, fed one JSON job on stdin and answering one JSON line per
finished shard, which this side yields as it arrives. The caller stores each shard where
its one-process path would: same files, resume and cache keys, and the same model id as
the vLLM server path (the engine and the weights are the same; Ray only spreads them).

The model is the folder :class:`~slimrec.llm.backends.vllm.VLLMBackend` would serve (a
LoRA adapter merged first, cached by its hash); on a cluster of several machines every
node must read it at the same path (a shared file system) or it must be a Hub id.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from slimrec.cluster import RayConfig
from slimrec.llm.backends.base import (
    ChatRequest,
    Completion,
    LLMError,
    SamplingConfig,
    only_local_decoding,
)
from slimrec.llm.backends.vllm import VLLMBackend, log_tail, start_guarded

JOB = Path(__file__).with_name("ray_vllm_job.py")


def vllm_sampling(sampling: SamplingConfig) -> dict:
    """vLLM's ``SamplingParams`` for ``sampling`` (a JSON schema becomes guided decoding)."""
    only_local_decoding(sampling, "vllm")
    params: dict = {
        "max_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": sampling.seed,
    }
    if sampling.response_schema is not None:  # as text: Arrow would reshape a nested schema
        params["structured_outputs"] = {"json": json.dumps(sampling.response_schema)}
    return params


def generate_shards(
    shards: Mapping[int, Sequence[ChatRequest]],
    engine: VLLMBackend,
    sampling: SamplingConfig,
    config: RayConfig,
    batch_size: int = 64,
) -> Iterator[tuple[int, list[Completion]]]:
    """Yield ``(shard, its completions in request order)`` as each shard is answered."""
    if not shards:
        return
    params = vllm_sampling(sampling)  # a setting vLLM cannot honour fails before Ray starts
    if engine.extra_args:
        raise LLMError(
            f"Ray Data's vLLM processor takes no server arguments ({engine.extra_args})",
            fix="drop ray to use the vLLM server with them",
        )
    engine.check()
    probe = subprocess.run([engine.python, "-c", "import ray.data.llm"], capture_output=True)
    if probe.returncode != 0:
        raise LLMError(
            f"ray.data.llm cannot be imported by {engine.python}",
            fix="run scripts/vllm-env.sh (it installs ray[data] beside vLLM), or drop ray "
            "to use the vLLM server",
        )
    from transformers import AutoTokenizer

    from slimrec.llm.chat import chat_prompt_ids

    # Tokenised here, as every local generation is: message text stays plain text.
    tokenizer = AutoTokenizer.from_pretrained(engine.folder())
    job = {
        "model": engine.folder(),
        "engine_kwargs": {
            "dtype": engine.dtype,
            "max_model_len": engine.max_model_len,
            "gpu_memory_utilization": engine.memory_fraction,
            "enforce_eager": True,  # as the server path: torch.compile only costs start-up
        },
        "sampling": params,
        "batch_size": batch_size,
        "ray": config.model_dump(),
        "rows": [
            {"shard": s, "index": i, "prompt": chat_prompt_ids(tokenizer, r.messages)}
            for s, requests in shards.items()
            for i, r in enumerate(requests)
        ],
    }
    handle, name = tempfile.mkstemp(prefix="slimrec-ray-vllm-", suffix=".log")
    log = Path(name)
    with open(handle, "w") as errors:
        # Its group (Ray's local cluster too) dies with this process or on terminate().
        process = start_guarded(
            engine.python,
            [engine.python, str(JOB)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert process.stdin is not None and process.stdout is not None
    done: set[int] = set()
    failure = ""
    try:
        try:
            process.stdin.write(json.dumps(job))
            process.stdin.close()
            for line in process.stdout:
                answer = json.loads(line)
                shard = int(answer["shard"])
                done.add(shard)
                yield shard, [_completion(c, engine.model_id) for c in answer["completions"]]
        except (OSError, ValueError, KeyError) as e:  # it died early, or wrote nonsense
            failure = f"{type(e).__name__}: {e}; "
        with contextlib.suppress(subprocess.TimeoutExpired):  # a shutdown can hang
            process.wait(timeout=120)
    finally:
        if process.poll() is None:  # the caller stopped early, or the shutdown hung
            process.terminate()  # the guard then kills the whole group
            process.wait()
    missing = sorted(set(shards) - done)
    if missing:
        tail = log_tail(log)
        raise LLMError(
            f"Ray Data's vLLM processor stopped (exit {process.returncode}) with "
            f"{len(missing)} shards unanswered (finished shards are kept): {failure}{tail}",
            where=str(log),
        )
    log.unlink(missing_ok=True)


def _completion(answer: dict, model: str) -> Completion:
    return Completion(
        text=answer["text"],
        model=model,
        prompt_tokens=answer["prompt_tokens"],
        completion_tokens=answer["completion_tokens"],
        finish_reason=answer["finish_reason"],
    )
