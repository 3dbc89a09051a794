"""``slimrec teach``: the teacher writes step-by-step rationales for a seeded set of users.

SLIM asks a large LLM, for a few users, to summarise their preferences, recommend
categories, and suggest items (three steps); the student later learns to do the same.
Each prompt is rendered from the *training part* of the user's history only
(``data.split("train")``: ``s[:-2]``), so no rationale can leak a validation or test
target into what the recommender is trained and evaluated on.

A template asked in two turns (``slim-cot-v4``) sends each user's history first and, once
steps 1 and 2 are answered, the candidates for step 3 with that answer in the messages:
two requests, each cached, the rationale their joined answer.

Answers go through the :class:`~slimrec.llm.cache.AnswerCache`: what is cached is never
asked again, each new answer is stored the moment it arrives, so a run that is killed or
fails half-way resumes asking only for what is missing. The result, one row per user, is
written atomically to a Parquet file.

With ``ray`` set, a local teacher (llama.cpp, transformers, vLLM) answers on a Ray
cluster instead, one replica per actor (:func:`slimrec.llm.ray_data.generate_shards`; vLLM
through Ray Data's own vLLM processor, :func:`slimrec.llm.ray_vllm.generate_shards`), each
shard's answers stored as it returns: the same cache, the same resume.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from slimrec.cluster import RayConfig
from slimrec.config import LaterSettingsOmitted
from slimrec.data import PreparedDataset
from slimrec.data.prepared import rationale_cutoff
from slimrec.errors import ConfigError
from slimrec.io import atomic_path
from slimrec.llm.backends import (
    Backend,
    BackendConfig,
    ChatRequest,
    Completion,
    Message,
    SamplingConfig,
    build_backend,
    resolve_backend,
)
from slimrec.llm.backends.vllm import VLLMBackend
from slimrec.llm.cache import AnswerCache, CachedAnswer, cache_key
from slimrec.llm.usage import Usage
from slimrec.methods.slim.candidate_labels import offered, titled
from slimrec.methods.slim.candidate_pool import CandidatePool, shown_order
from slimrec.methods.slim.parse import parse_rationale
from slimrec.methods.slim.prompts import Prompt, PromptConfig, build_prompt, shown_title
from slimrec.methods.slim.structured import (
    answer_schema,
    first_turn_ok,
    joined_turns,
    render,
    render_turns,
    structured_messages,
)
from slimrec.progress import progress as progress_bar


class TeacherConfig(BackendConfig, LaterSettingsOmitted):
    """Which LLM writes the rationales (every :class:`BackendConfig` field), and how it is
    asked (SLIM's step-by-step prompt)."""

    LATER_OFF: ClassVar[dict[str, Any]] = {"structured": False, "ray": None}

    prompt: PromptConfig = Field(
        default_factory=PromptConfig, description="Prompt wording and history budgets."
    )
    structured: bool = Field(
        False,
        description="Constrain answers to SLIM's three steps as JSON (a grammar in llama.cpp, "
        "response_format at OpenAI-compatible endpoints such as vLLM); rendered back to "
        "step text. Not offered by backend hf.",
    )
    drop_repeats: bool = Field(
        True,
        description="Render a structured answer without what it says twice: a category "
        "named again, a title listed again or naming a category (the answer cache keeps "
        "what the teacher wrote). Half of the 0.5B's and the 1.5B's answers repeat a line.",
    )
    ray: RayConfig | None = Field(
        None,
        description="Run a local teacher on a Ray cluster, one model replica per actor "
        "(pip install 'slimrec[ray]'; backend vllm: Ray Data's vLLM processor); an endpoint "
        "spreads its own work, so not with openai.",
    )

    @model_validator(mode="after")
    def _structured_needs_an_engine_with_schemas(self) -> TeacherConfig:
        if self.structured and self.backend == "hf":
            raise ValueError(
                "structured output needs backend llamacpp, vllm or openai (an endpoint "
                "with response_format); backend hf has no grammar"
            )
        if self.ray is not None and (self.backend == "openai" or self.base_url):
            raise ValueError(
                "ray runs a local teacher in each replica; an endpoint (backend openai) "
                "already spreads its work: drop ray, or run the model locally"
            )
        return self

    def engine(self) -> str:
        """The backend that answers (``auto`` resolved here); hf cannot hold answers to a
        schema, so ``auto`` that finds only hf refuses a structured teacher."""
        engine = resolve_backend(self)
        if self.structured and engine == "hf":
            raise ConfigError(
                "structured output needs llama.cpp, vLLM or an endpoint, and backend auto "
                "found none installed here (hf has no grammar)",
                where="teacher.backend",
                fix="pip install 'slimrec[llamacpp]', or set structured: false",
            )
        return engine

    def sampling_for_requests(self, turn: int = 1) -> SamplingConfig:
        """The sampling sent with each request (and keyed in the cache); ``turn`` 2 is the
        second turn's of a template asked in two."""
        if not self.structured:
            return self.sampling
        schema = answer_schema(self.prompt, turn if self.prompt.two_turns else 0)
        return self.sampling.model_copy(update={"response_schema": schema})

    def messages(self, prompt: Prompt, first_answer: str | None = None) -> list[Message]:
        """What the teacher is sent for ``prompt`` (the student is always sent the plain
        one); with ``first_answer``, the second turn of a template asked in two."""
        if self.structured:
            return structured_messages(prompt, first_answer)
        if first_answer is None:
            return prompt.messages()
        return prompt.follow_up_messages(first_answer)

    def written(self, first: str, second: str | None) -> str:
        """The rationale an answer (two answers, of a template asked in two turns) reads
        as: rendered from JSON where structured, else as written."""
        if not self.prompt.two_turns:
            return (self.structured and render(first, self.drop_repeats)) or first
        if self.structured:
            return render_turns(first, second, self.drop_repeats) or first
        return first if second is None else joined_turns(first, second)

    def worth_a_second_turn(self, first: str) -> bool:
        """Whether a first turn's answer can be followed by the second turn."""
        return first_turn_ok(first) if self.structured else bool(first.strip())


COLUMNS = [
    "user",
    "prompt",
    "response",
    "step1",
    "step2",
    "step3",
    "parsed",
    "parse_problems",
    "model",
    "template_version",
    "prompt_tokens",
    "completion_tokens",
    "cached",
    "at_cap",  # an answer (a turn of one asked in two) that reached its token cap
]


def rationale_row(
    user: int,
    prompt: Prompt,
    response: str,
    *,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached: bool,
    at_cap: bool,
) -> dict[str, Any]:
    """One row of a rationales file (:data:`COLUMNS`): the answer and its parsed steps.

    Teacher and student files share it, so every later stage reads either the same way.
    """
    rationale = parse_rationale(response)
    missing = "missing: " + ", ".join(rationale.missing) if rationale.missing else ""
    return {
        "user": int(user),
        "prompt": prompt.stored(),
        "response": response,
        "step1": rationale.summary,
        "step2": rationale.categories,
        "step3": rationale.items,
        "parsed": rationale.complete,
        "parse_problems": missing,
        "model": model,
        "template_version": prompt.version,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cached": cached,
        "at_cap": at_cap,
    }


@dataclass(frozen=True)
class Answered:
    """A cached answer, and whether it was in the cache before this run."""

    answer: CachedAnswer
    cached: bool


@dataclass
class TeachResult:
    path: Path
    users: int
    asked: int  # requests sent to the backend in this run
    cached: int  # users answered from the cache
    parsed: int  # users whose answer had all three steps
    usage: Usage

    @property
    def parse_rate(self) -> float:
        return self.parsed / self.users if self.users else 0.0

    def summary(self) -> str:
        return (
            f"{self.users:,} rationales ({self.parsed:,} with all three steps, parse rate "
            f"{self.parse_rate:.1%}) -> {self.path}\nteacher usage: {self.usage.summary()}"
        )


def select_users(n_total: int, n_users: int, seed: int) -> np.ndarray:
    """A seeded subset of ``n_users`` dense user ids (all of them when there are fewer)."""
    if n_users < 1:
        raise ConfigError(f"n_users must be at least 1, got {n_users}", where="--n-users")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(n_total, size=min(n_users, n_total), replace=False)
    return np.sort(chosen)


def prompt_items(items: pd.DataFrame) -> dict[int, dict[str, str]]:
    """Item id -> the text fields the prompt may show (title falls back to the raw id)."""
    fields = [c for c in ("title", "brand", "categories") if c in items.columns]
    table = items.set_index("item")[[*fields, "raw_id"]].fillna("").astype(str)
    catalog = {}
    for item, row in zip(table.index, table.to_dict("records"), strict=True):
        info = {f: row[f] for f in fields if row[f]}
        info.setdefault("title", f"item {row['raw_id']}")
        catalog[int(item)] = info
    return catalog


def user_prompts(
    dataset: PreparedDataset, users: Sequence[int], config: PromptConfig
) -> list[Prompt]:
    """Each user's prompt, from the training part of the history only (no targets), less
    its ``config.hold_out_last`` most recent items (:func:`rationale_cutoff`); candidates,
    where offered, counted from those same parts of every user's history."""
    shown = prompt_histories(dataset, config)
    catalog = prompt_items(dataset.items)
    pool = candidate_pool(dataset, config)
    prompts = []
    for u in users:
        seen = shown[u]
        items = [catalog[int(i)] for i in seen]
        if pool is None:
            prompts.append(build_prompt(items, config))
            continue
        listed = shown_order(offered_items(pool, seen, config, catalog))
        prompts.append(build_prompt(items, config, [catalog[i] for i in listed]))
    return prompts


def offered_items(
    pool: CandidatePool, seen: Sequence[int], config: PromptConfig, catalog: dict[int, dict]
) -> list[int]:
    """The candidates a prompt for history ``seen`` offers, best first: the pool's best
    whose titles differ as the prompt shows them (:meth:`CandidatePool.offer`)."""
    return pool.offer(seen, config.candidates, lambda i: shown_title(catalog[i], config))


def prompt_histories(dataset: PreparedDataset, config: PromptConfig) -> list[np.ndarray]:
    """Every user's history as their prompt may show it: the training part, less its
    ``config.hold_out_last`` most recent items."""
    histories, _ = dataset.split("train")
    return [h[: rationale_cutoff(len(h), config.hold_out_last)] for h in histories]


def candidate_pool(dataset: PreparedDataset, config: PromptConfig) -> CandidatePool | None:
    """The pool that offers candidates, counted from what the prompts show (None where
    the prompt offers none)."""
    if not config.candidates:
        return None
    return CandidatePool(prompt_histories(dataset, config), dataset.n_items)


def teach(
    data: str | Path,
    out: str | Path,
    config: TeacherConfig,
    *,
    n_users: int = 200,
    seed: int = 0,
    cache: AnswerCache | str | Path | None = None,
    backend: Backend | None = None,
    progress: bool = True,
) -> TeachResult:
    """Write ``out`` (Parquet, one row per chosen user); see the module docstring."""
    dataset = PreparedDataset.load(data)
    users = select_users(dataset.n_users, n_users, seed)
    prompts = user_prompts(dataset, users, config.prompt)
    owned = backend is None  # started here, so stopped here (a vLLM server, llama.cpp)
    engine = None
    if backend is None:
        # engine() resolves auto once and refuses a structured teacher it resolved to hf
        engine = config.engine()
        backend = build_backend(config, engine)
    model_id = backend.model_id
    store = cache if isinstance(cache, AnswerCache) else AnswerCache(cache)
    usage = Usage(config.price_prompt_per_mtok, config.price_completion_per_mtok)
    asked = 0

    def ask(who: list[int], messages: list[list[Message]], turn: int) -> list[Answered]:
        """Each request's answer, from the cache or asked now (stored as it comes)."""
        nonlocal engine, asked
        sampling = config.sampling_for_requests(turn)
        keys = [cache_key(model_id, config.prompt.version, m, sampling) for m in messages]
        known = store.get_many(keys)
        missing: dict[str, ChatRequest] = {}  # one request per distinct prompt
        for user, key, sent in zip(who, keys, messages, strict=True):
            if key not in known and key not in missing:
                missing[key] = ChatRequest(key=f"user {user}", messages=sent)
        if missing:
            if config.ray is None:
                backend.check()
                stream = backend.generate(list(missing.values()), sampling)
            else:  # replicas built where they run; this backend only named the model
                engine = engine or config.engine()
                make = functools.partial(build_backend, config, engine)
                vllm = backend if isinstance(backend, VLLMBackend) else None
                stream = _on_ray(list(missing.values()), make, config, sampling, vllm)
            _store(stream, store, missing, config, sampling, model_id, usage, progress)
            asked += len(missing)
        answers = store.get_many(keys)
        for key in keys:
            if key in known:
                usage.add_cached(answers[key].prompt_tokens, answers[key].completion_tokens)
        return [Answered(answers[key], key in known) for key in keys]

    try:
        firsts = ask(list(users), [config.messages(p) for p in prompts], turn=1)
        seconds: dict[int, Answered] = {}
        if config.prompt.two_turns:  # the candidates and step 3, after steps 1 and 2
            follow = [
                i for i, a in enumerate(firsts) if config.worth_a_second_turn(a.answer.response)
            ]
            sent = [config.messages(prompts[i], firsts[i].answer.response) for i in follow]
            seconds = dict(zip(follow, ask([users[i] for i in follow], sent, turn=2), strict=True))
    finally:
        usage.retries = int(getattr(backend, "retries", 0))
        if store is not cache:
            store.close()
        if owned and hasattr(backend, "close"):
            backend.close()

    rows = []
    cap = config.sampling.max_new_tokens
    for i, (user, prompt, first) in enumerate(zip(users, prompts, firsts, strict=True)):
        turns = [first, seconds[i]] if i in seconds else [first]
        second = seconds[i].answer.response if i in seconds else None
        written = config.written(first.answer.response, second)
        rows.append(
            rationale_row(
                user,
                prompt,
                titled(written, offered(prompt.with_candidates)),
                model=first.answer.model,
                prompt_tokens=sum(t.answer.prompt_tokens for t in turns),
                completion_tokens=sum(t.answer.completion_tokens for t in turns),
                cached=all(t.cached for t in turns),
                at_cap=any(t.answer.completion_tokens >= cap for t in turns),
            )
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    out = Path(out)
    with atomic_path(out) as tmp:
        frame.to_parquet(tmp, index=False)
    return TeachResult(
        path=out,
        users=len(frame),
        asked=asked,
        cached=int(frame["cached"].sum()),
        parsed=int(frame["parsed"].sum()),
        usage=usage,
    )


def _on_ray(
    requests: list[ChatRequest],
    make_backend: Any,
    config: TeacherConfig,
    sampling: SamplingConfig,
    vllm: VLLMBackend | None = None,
) -> Iterator[tuple[int, Completion]]:
    """``generate``'s stream, from replicas on Ray: shards of four rounds of the engine's
    batch, so a replica's slots stay full and a killed run loses one shard at most. A vLLM
    teacher runs in Ray Data's vLLM processor (:mod:`slimrec.llm.ray_vllm`), any other in
    replicas built by ``make_backend``."""
    from slimrec.llm import ray_vllm
    from slimrec.llm.ray_data import generate_shards

    assert config.ray is not None
    size = 4 * config.batch_size
    shards = {s: requests[s * size : (s + 1) * size] for s in range(-(-len(requests) // size))}
    if vllm is not None:
        answered = ray_vllm.generate_shards(shards, vllm, sampling, config.ray, config.batch_size)
    else:
        answered = generate_shards(shards, make_backend, sampling, config.ray)
    for s, completions in answered:
        for offset, completion in enumerate(completions):
            yield s * size + offset, completion


def _store(
    stream: Iterator[tuple[int, Completion]],
    store: AnswerCache,
    missing: dict[str, ChatRequest],
    config: TeacherConfig,
    sampling: SamplingConfig,
    model_id: str,
    usage: Usage,
    progress: bool,
) -> None:
    """Store every missing answer the moment it arrives."""
    keys = list(missing)
    requests = [missing[k] for k in keys]
    with progress_bar(total=len(requests), desc="teacher", unit="answer", shown=progress) as bar:
        for index, completion in stream:
            store.put(
                keys[index],
                completion,
                model_id=model_id,
                template_version=config.prompt.version,
                request={
                    "messages": requests[index].messages,
                    "sampling": sampling.model_dump(mode="json"),
                },
            )
            usage.add(completion)
            bar.update()
