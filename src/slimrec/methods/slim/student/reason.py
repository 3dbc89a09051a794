"""``slimrec reason``: the distilled student writes a rationale for every user.

Prompts are built exactly like the teacher's (:func:`slimrec.methods.slim.teach.user_prompts`,
from the training part of each history only, so no validation or test item can leak),
and answered by the student: the base model plus an optional LoRA adapter merged into
its weights, decoded with :class:`~slimrec.llm.backends.hf.HFBackend` (batched,
left-padded, longest prompts first, KV cache, finished rows replaced at once by waiting
prompts). The output has the teacher's columns (:data:`slimrec.methods.slim.teach.COLUMNS`).

A template asked in two turns (``slim-cot-v4``) is answered in two passes per shard: steps
1 and 2 for every user, then step 3 after each user's candidates, joined into one answer.

Thousands of users take hours on a CPU, so the run is resumable in shards: users are
answered ``shard_size`` at a time, each shard written atomically to
``<out>.shards/shard-NNNNN.parquet`` as soon as it is done; a re-run skips finished
shards, and the final file is assembled atomically from them. ``<out>.shards/key.json``
holds a hash of everything that decides the answers (model and adapter weights, prompts,
sampling, dtype, shard layout): when it changes, old shards are discarded.

With ``ray`` set, the pending shards are answered across a Ray cluster instead
(:func:`slimrec.llm.ray_data.generate_shards`: one student replica per actor, the adapter
shipped as bytes, each shard one ``generate`` call as here; with ``engine: vllm``, Ray
Data's own vLLM processor, :func:`slimrec.llm.ray_vllm.generate_shards`), and written here
as they return: same files, same resume, same key.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import ConfigDict, Field, model_validator

from slimrec.cluster import RayConfig
from slimrec.config import LaterSettingsOmitted, config_hash
from slimrec.data import PreparedDataset
from slimrec.errors import ConfigError
from slimrec.io import atomic_path, write_json_atomic
from slimrec.llm.backends import EndpointConfig
from slimrec.llm.backends.base import Backend, ChatRequest, Completion, SamplingConfig
from slimrec.llm.backends.llamacpp import LlamaCppBackend
from slimrec.llm.backends.vllm import VLLMBackend
from slimrec.machine import THREADS
from slimrec.methods.slim.candidate_labels import offered, titled
from slimrec.methods.slim.prompts import Prompt, PromptConfig
from slimrec.methods.slim.teach import COLUMNS, rationale_row, user_prompts
from slimrec.progress import progress as progress_bar

DEFAULT_BASE = "smollm2-135m"
# Settings that change how fast the answers come, not what they are.
SPEED_ONLY = ("batch_size", "threads", "refill", "share_prefix", "device", "ray")
# Where the student runs: the answers are named by the backend's model id instead.
WHERE_IT_RUNS = ("endpoint", "engine")

Engine = Literal["hf", "vllm", "llamacpp"]
ENGINE = (
    "Where the student runs here: hf (slimrec's batched decoder over transformers), vllm "
    "(a vLLM server slimrec starts, adapter merged; scripts/vllm-env.sh) or llamacpp (the "
    "shipped GGUF base as it is, the adapter applied by llama.cpp; fastest for one prompt "
    "at a time, as slimrec serve asks)."
)
STRUCTURED = (
    "Hold the student to the three steps it was taught (slimrec's decoder follows "
    "structured.student_pattern token by token: five distinct categories, the titles "
    "under each, none twice); engine hf only."
)


def _reason_sampling() -> SamplingConfig:
    # Teacher rationales of the shipped teacher run ~120-250 tokens; 192 keeps most whole
    # while capping the tail of rambling answers (answers that hit it are "length").
    return SamplingConfig(max_new_tokens=192, temperature=0.0)


class ReasonConfig(LaterSettingsOmitted):
    """How the student writes a rationale for every user."""

    model_config = ConfigDict(extra="forbid")
    LATER_OFF: ClassVar[dict[str, Any]] = {"structured": False}

    base_model: str | None = Field(
        None,
        description="Student base model: a shipped name (smollm2-135m) or a local folder. "
        "Default: the base named in the adapter's student.json, else smollm2-135m.",
    )
    adapter: str | None = Field(
        None, description="LoRA adapter folder (slimrec distill's OUT/adapter); none = base."
    )
    prompt: PromptConfig = Field(
        default_factory=PromptConfig,
        description="Prompt wording and budgets; use the teacher's, so the student is "
        "asked what it was trained on.",
    )
    sampling: SamplingConfig = Field(
        default_factory=_reason_sampling, description="Decoding settings (default greedy)."
    )
    structured: bool = Field(False, description=STRUCTURED)
    batch_size: int = Field(64, ge=1, description="Rows decoded together in one forward pass.")
    refill: bool = Field(
        True, description="Refill freed batch rows with waiting prompts (continuous batching)."
    )
    share_prefix: bool = Field(
        True,
        description="Run the prompts' common opening (template, instructions) once for all rows.",
    )
    threads: int | None = Field(None, ge=1, description=THREADS)
    dtype: str = Field(
        "auto",
        pattern=r"^(auto|float32|bfloat16|float16)$",
        description="Weights dtype: auto = float32 on CPU (bf16 matmuls are ~50x slower "
        "on AVX2-only CPUs), bfloat16 on GPUs that support it.",
    )
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    shard_size: int = Field(256, ge=1, description="Users per resumable shard.")
    engine: Engine = Field("hf", description=ENGINE)
    endpoint: EndpointConfig | None = Field(
        None,
        description="Ask the student at an OpenAI-compatible endpoint that serves it (base "
        "model + this adapter, e.g. vLLM --enable-lora, or slimrec serve-llm --adapter) "
        "instead of running it here; base_model, dtype, device and batching then do not apply.",
    )
    ray: RayConfig | None = Field(
        None,
        description="Answer the shards across a Ray cluster, one student replica per "
        "actor (pip install 'slimrec[ray]'; with engine: vllm, Ray Data's vLLM processor in "
        "vLLM's interpreter); same answers and files as without it.",
    )
    users: list[int] | None = Field(
        None, description="Dense user ids to answer (default: every user of the dataset)."
    )

    @model_validator(mode="after")
    def _one_place_to_run(self) -> ReasonConfig:
        one_place_to_run(self.engine, self.endpoint, self.ray, self.structured)
        one_turn_on_ray(self.ray, self.prompt)
        return self


def student_sampling(
    sampling: SamplingConfig, prompt: PromptConfig, structured: bool, turn: int = 1
) -> SamplingConfig:
    """The sampling the student decodes with: ``sampling``, held to the three steps when
    ``structured`` (to steps 1 and 2 in ``turn`` 1 of a template asked in two turns, to
    step 3 in turn 2)."""
    if not structured:
        return sampling
    from slimrec.methods.slim.structured import student_pattern

    pattern = student_pattern(prompt, turn if prompt.two_turns else 0)
    return sampling.model_copy(update={"response_pattern": pattern})


def one_place_to_run(
    engine: str,
    endpoint: EndpointConfig | None,
    ray: RayConfig | None = None,
    structured: bool = False,
) -> None:
    """The student runs here (``engine``), at an ``endpoint``, or on Ray: one of them; and
    only slimrec's own decoder holds it to the three steps."""
    if structured and (endpoint is not None or engine != "hf"):
        raise ValueError(
            "structured: true needs slimrec's decoder (engine: hf, no endpoint): the engines' "
            "grammars cannot say 'no title twice'"
        )
    if endpoint is not None and engine != "hf":
        raise ValueError(
            f"give either an endpoint (the student runs there) or engine: {engine} (it runs "
            "here), not both"
        )
    if ray is not None and engine == "llamacpp":
        raise ValueError("ray runs the student with engine hf or vllm, not llamacpp")
    if ray is not None and endpoint is not None:
        raise ValueError(
            "ray runs the student in each replica (slimrec's decoder, or vLLM through Ray "
            "Data's processor with engine: vllm): drop the endpoint, it already spreads the work"
        )


def one_turn_on_ray(ray: RayConfig | None, prompt: PromptConfig) -> None:
    """The student's shards on Ray are answered one turn per prompt."""
    if ray is not None and prompt.two_turns:
        raise ValueError(
            f"the student on ray answers one turn per prompt, and template {prompt.version} "
            "asks in two: drop reason.ray, or use template slim-cot-v3"
        )


def base_of(config: ReasonConfig) -> str:
    """The base model: given, else the adapter's recorded base, else the default."""
    if config.base_model:
        return config.base_model
    if config.adapter:
        info = Path(config.adapter) / "student.json"
        if info.is_file():
            return str(json.loads(info.read_text(encoding="utf-8"))["base_model"])
    return DEFAULT_BASE


def shard_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".shards")


def engine_backend(config: ReasonConfig) -> Backend | None:
    """The endpoint or engine the student answers through, not yet started; None for
    slimrec's own decoder (``engine: hf``)."""
    if config.endpoint is not None:
        return config.endpoint.build()
    if config.engine == "vllm":
        return VLLMBackend(
            base_of(config),
            adapter=config.adapter,
            dtype=config.dtype,
            concurrency=config.batch_size,
            threads=config.threads,
        )
    if config.engine == "llamacpp":  # adapter applied by llama.cpp
        return LlamaCppBackend(
            base_of(config),
            adapter=config.adapter,
            parallel=min(config.batch_size, 8),
            threads=config.threads,
        )
    return None


def reason(
    data_dir: str | Path,
    out: str | Path,
    config: ReasonConfig,
    *,
    backend: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``out`` (a ``.parquet`` file, or a folder to hold ``rationales.parquet``).

    One row per user; returns counts, parse rate and speed. See the module docstring.
    """
    from slimrec.llm.backends.hf import HFBackend

    out = Path(out)
    if out.suffix != ".parquet":  # a folder: the file goes inside it
        out = out / "rationales.parquet"
    dataset = PreparedDataset.load(data_dir)
    users = _users(config, dataset.n_users)
    prompts = user_prompts(dataset, users, config.prompt)
    if config.adapter and not (Path(config.adapter) / "adapter_config.json").is_file():
        raise ConfigError(
            "not a LoRA adapter folder (no adapter_config.json)",
            where=config.adapter,
            fix="give slimrec distill's OUT/adapter",
        )
    owned = backend is None  # started here, so stopped here (a vLLM server)
    if backend is None and (backend := engine_backend(config)) is not None:
        backend.check()
    backend = backend or HFBackend(
        base_of(config),
        adapter=config.adapter,
        device=config.device,
        dtype=config.dtype,
        batch_size=config.batch_size,
        threads=config.threads,
        refill=config.refill,
        share_prefix=config.share_prefix,
        progress=False,
    )
    sampling = student_sampling(config.sampling, config.prompt, config.structured)
    follow_up = student_sampling(config.sampling, config.prompt, config.structured, turn=2)
    key = shard_key(config, backend.model_id, users, prompts)
    shards = shard_dir(out)
    _claim(shards, key)
    started = time.perf_counter()
    generated = tokens = 0
    fresh: set[int] = set()
    size = config.shard_size
    n_shards = (len(users) + size - 1) // size
    chunks = {s: range(s * size, min((s + 1) * size, len(users))) for s in range(n_shards)}
    requests = [
        ChatRequest(key=f"user {u}", messages=p.messages())
        for u, p in zip(users, prompts, strict=True)
    ]
    bar = progress_bar(total=len(users), desc="reason", unit="user", shown=progress)

    def tick(n_tokens: int, n_users: int = 1) -> None:
        nonlocal tokens
        tokens += n_tokens
        bar.update(n_users)
        bar.set_postfix_str(f"{tokens / (time.perf_counter() - started):.1f} tok/s", refresh=False)

    try:
        with bar:
            pending = {}
            for s, chunk in chunks.items():
                if (shards / f"shard-{s:05d}.parquet").is_file():
                    bar.update(len(chunk))
                else:
                    pending[s] = [requests[i] for i in chunk]
            if config.ray is None and config.prompt.two_turns:
                answered = (
                    (s, _complete_turns(backend, (sampling, follow_up), chunks[s], prompts, tick))
                    for s in pending
                )
            elif config.ray is None:
                answered = (
                    (s, _complete(backend, sampling, part, tick)) for s, part in pending.items()
                )
            elif isinstance(backend, VLLMBackend):
                from slimrec.llm import ray_vllm

                answered = ray_vllm.generate_shards(
                    pending, backend, sampling, config.ray, config.batch_size
                )
            else:
                from slimrec.llm.ray_data import generate_shards

                answered = generate_shards(pending, _ShippedStudent(config), sampling, config.ray)
            # closing: a shard that fails to store stops the cluster's work at once
            with contextlib.closing(answered):
                for s, completions in answered:
                    if config.ray is not None:
                        tick(sum(c.completion_tokens for c in completions), len(completions))
                    chunk = chunks[s]
                    part = _rows(
                        [users[i] for i in chunk],
                        [prompts[i] for i in chunk],
                        completions,
                        config.sampling.max_new_tokens,
                    )
                    _write(pd.DataFrame(part, columns=COLUMNS), shards / f"shard-{s:05d}.parquet")
                    fresh.add(s)
                    generated += len(part)
    finally:
        if owned and hasattr(backend, "close"):
            backend.close()
    seconds = time.perf_counter() - started
    parts = []
    for s in range(n_shards):
        part = pd.read_parquet(shards / f"shard-{s:05d}.parquet")
        part["cached"] = s not in fresh
        parts.append(part)
    # shards written before a column was added lack it (empty there)
    frame = pd.concat(parts, ignore_index=True).reindex(columns=COLUMNS)
    _write(frame, out)
    return {
        "path": str(out),
        "users": len(frame),
        "generated": generated,
        "shards": n_shards,
        "shards_generated": len(fresh),
        "parsed": int(frame["parsed"].sum()),
        "parse_rate": float(frame["parsed"].mean()) if len(frame) else 0.0,
        "completion_tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 2) if seconds > 0 and tokens else 0.0,
        "model": backend.model_id,
    }


def _write(frame: pd.DataFrame, path: Path) -> None:
    # zstd: 5,000 users' rationales take ~1.6 MB instead of snappy's ~2.4 MB, small
    # enough for a long run to keep them in git between sessions (bench/runs/README.md).
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, compression="zstd")


def _users(config: ReasonConfig, n_users: int) -> list[int]:
    if config.users is None:
        return list(range(n_users))
    bad = [u for u in config.users if not 0 <= u < n_users]
    if bad:
        raise ConfigError(
            f"user id {bad[0]} is not in the dataset (dense ids 0..{n_users - 1})",
            where="users",
            fix="give dense user ids of the prepared dataset",
        )
    if len(set(config.users)) != len(config.users):
        raise ConfigError("users lists a user twice", where="users", fix="list each user once")
    return list(config.users)


def shard_key(config: ReasonConfig, model_id: str, users: list[int], prompts: list[Prompt]) -> str:
    """What decides the shards' answers. The model id names base and adapter by their
    weights, so where the adapter folder lies (an absolute path here, a relative one in
    another checkout) is left out, and a run resumes from shards committed elsewhere."""
    settings = config.model_dump(
        mode="json",
        exclude=set(SPEED_ONLY) | set(WHERE_IT_RUNS) | {"users", "base_model", "adapter"},
    )
    # The pattern itself, not only the switch: a changed pattern writes other answers.
    sampling = student_sampling(config.sampling, config.prompt, config.structured)
    settings["sampling"] = sampling.model_dump(mode="json")
    asked: list[Any] = [p.messages() for p in prompts]
    if config.prompt.two_turns:  # the second turn's pattern and messages decide too
        follow_up = student_sampling(config.sampling, config.prompt, config.structured, turn=2)
        settings["follow_up_sampling"] = follow_up.model_dump(mode="json")
        asked += [p.follow_up for p in prompts]
    return config_hash(settings, model_id, [int(u) for u in users], asked)


def _claim(shards: Path, key: str) -> None:
    """Use ``shards`` for ``key``: shards of any other key are stale and removed."""
    marker = shards / "key.json"
    if shards.is_dir():
        try:
            same = json.loads(marker.read_text(encoding="utf-8")).get("key") == key
        except (OSError, ValueError):
            same = False
        if same:
            return
        shutil.rmtree(shards)
    shards.mkdir(parents=True)
    write_json_atomic(marker, {"key": key})


def _complete(
    backend: Any,
    sampling: SamplingConfig,
    requests: list[ChatRequest],
    tick: Callable[[int], None],
) -> list[Completion]:
    """The completions of ``requests``, in order; ``tick`` per answer."""
    answers: dict[int, Completion] = {}
    for i, completion in backend.generate(requests, sampling):
        answers[i] = completion
        tick(completion.completion_tokens)
    return [answers[i] for i in range(len(requests))]


def _complete_turns(
    backend: Any,
    samplings: tuple[SamplingConfig, SamplingConfig],
    chunk: range,
    prompts: list[Prompt],
    tick: Callable[..., None],
) -> list[Completion]:
    """The answers of a template asked in two turns, in order: steps 1 and 2 for every
    user of ``chunk``, then step 3 after each user's candidates, joined into one answer
    (:func:`~slimrec.methods.slim.structured.joined_turns`; tokens of both turns counted,
    ``extra["at_cap"]`` where either turn reached the cap); ``tick`` per user done."""
    from slimrec.methods.slim.structured import joined_turns, second_turn

    first_turn = [ChatRequest(key=f"prompt {i}", messages=prompts[i].messages()) for i in chunk]
    firsts = _complete(backend, samplings[0], first_turn, lambda n: tick(n, 0))
    second_turn = [
        ChatRequest(
            key=f"prompt {i}",
            messages=second_turn(prompts[i], first.text),
        )
        for i, first in zip(chunk, firsts, strict=True)
    ]
    seconds = _complete(backend, samplings[1], second_turn, tick)
    cap = samplings[0].max_new_tokens
    return [
        Completion(
            text=joined_turns(first.text, second.text),
            model=second.model,
            prompt_tokens=first.prompt_tokens + second.prompt_tokens,
            completion_tokens=first.completion_tokens + second.completion_tokens,
            finish_reason=second.finish_reason,
            extra={"at_cap": max(first.completion_tokens, second.completion_tokens) >= cap},
        )
        for first, second in zip(firsts, seconds, strict=True)
    ]


def _rows(
    users: list[int], prompts: list[Prompt], answers: list[Completion], cap: int
) -> list[dict]:
    """One row per user, in order, in the teacher's columns (picked labels as titles)."""
    return [
        rationale_row(
            user,
            prompt,
            titled(answer.text, offered(prompt.with_candidates)),
            model=answer.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            cached=False,
            at_cap=bool(answer.extra.get("at_cap", answer.completion_tokens >= cap)),
        )
        for user, prompt, answer in zip(users, prompts, answers, strict=True)
    ]


class _ShippedStudent:
    """Builds the student in a Ray actor; the adapter travels as bytes, so the nodes of a
    cluster need no shared file system (only slimrec and the base model installed)."""

    def __init__(self, config: ReasonConfig):
        self.base = base_of(config)
        self.files: dict[str, bytes] = {}
        if config.adapter:
            root = Path(config.adapter)
            self.files = {
                str(f.relative_to(root)): f.read_bytes() for f in root.rglob("*") if f.is_file()
            }
        assert config.ray is not None
        self.settings = {
            "device": config.device,
            "dtype": config.dtype,
            "batch_size": config.batch_size,
            "threads": config.threads or max(1, int(config.ray.cpus_per_replica)),
            "refill": config.refill,
            "share_prefix": config.share_prefix,
        }

    def __call__(self) -> Any:
        from slimrec.llm.backends.hf import HFBackend

        adapter = None
        if self.files:
            adapter = Path(tempfile.mkdtemp(prefix="slimrec-adapter-"))
            for name, data in self.files.items():
                (adapter / name).parent.mkdir(parents=True, exist_ok=True)
                (adapter / name).write_bytes(data)
        return HFBackend(
            self.base, adapter=str(adapter) if adapter else None, progress=False, **self.settings
        )
