"""Rationales for serving: read from the run for known users, written by the student else.

A known user's rationale is the row the run wrote for them (the student's, or the
teacher's for ``slim-``). A new history gets one from the distilled student (base model
plus the run's LoRA adapter, prompted exactly as in training:
:func:`slimrec.methods.slim.prompts.build_prompt` with the run's prompt settings and greedy
decoding), embedded by the run's sentence encoder so the model can score with it.

Generation is slow (seconds on a CPU), so it never runs on the event loop: requests go
to a :class:`~slimrec.serve.batching.MicroBatcher` worker thread, which answers
concurrent ones in one batch. At most ``max_pending`` generations may wait or run at
once; past that :meth:`Explainer.explain` raises :class:`Busy` at once (the API answers
503 with ``Retry-After``, estimated from a running mean of recent generation times)
instead of letting a queue grow without bound. Answers are kept
in a small LRU cache keyed by the history, so a repeated history costs nothing.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from slimrec.llm.backends.base import ChatRequest, Completion, SamplingConfig
from slimrec.methods.slim.candidate_labels import offered, titled
from slimrec.methods.slim.parse import parse_rationale
from slimrec.methods.slim.prompts import PromptConfig, build_prompt
from slimrec.methods.slim.structured import joined_turns, second_turn
from slimrec.serve.batching import MicroBatcher


class Busy(RuntimeError):
    """Too many generations are already waiting; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the student is busy; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Explanation:
    """A rationale: whole text, the three parsed steps, and where it came from."""

    text: str
    steps: tuple[str, str, str]
    source: str  # "run:student", "run:teacher" or "student"
    parsed: bool

    def field(self, name: str) -> str:
        """The text a model reads: ``response`` or ``step1``..``step3``."""
        return self.text if name == "response" else self.steps[int(name[-1]) - 1]


def known_rationales(file: Path | None, source: str) -> dict[int, Explanation]:
    """Every user's rationale in a run's ``rationales.parquet`` (empty when no file)."""
    if file is None:
        return {}
    frame = pd.read_parquet(file, columns=["user", "response", "step1", "step2", "step3"])
    frame = frame.fillna("")
    out = {}
    for row in frame.itertuples(index=False):
        steps = (str(row.step1), str(row.step2), str(row.step3))
        out[int(row.user)] = Explanation(str(row.response), steps, f"run:{source}", all(steps))
    return out


class Explainer:
    """The student, its prompt settings and the encoder, behind a bounded queue."""

    def __init__(
        self,
        backend,
        prompt: PromptConfig,
        sampling: SamplingConfig,
        encoder,
        *,
        max_pending: int = 8,
        max_batch: int = 8,
        cache_size: int = 1024,
        seconds_per_answer: float = 10.0,  # first guess; then a running mean
        follow_up_sampling: SamplingConfig | None = None,
    ):
        self.backend = backend
        self.prompt = prompt
        self.sampling = sampling
        # the second turn's, where the run's template asks in two (default: ``sampling``)
        self.follow_up_sampling = follow_up_sampling or sampling
        self.encoder = encoder
        self.max_pending = max_pending
        self.seconds_per_answer = seconds_per_answer
        self._batcher = MicroBatcher(backend, max_batch=max_batch, wait_s=0.02)
        self._pending = 0
        self._cache: OrderedDict[tuple, Explanation] = OrderedDict()
        self._cache_size = cache_size
        self._encode_lock = threading.Lock()  # one caller at a time per encoder model

    @property
    def pending(self) -> int:
        return self._pending

    async def explain(
        self, items: Sequence[dict[str, str]], candidates: Sequence[dict[str, str]] | None = None
    ) -> Explanation:
        """The student's rationale for a history of items (their prompt text fields:
        title, and brand and categories where the run's prompt shows them, exactly as in
        training; :func:`slimrec.methods.slim.teach.prompt_items`), and the candidates
        offered where the run's prompt offers them (labels picked are read as titles).

        Must be awaited on one event loop (the pending count is not locked); raises
        :class:`Busy` when ``max_pending`` generations are already under way.
        """
        key = tuple(tuple(sorted(item.items())) for item in [*items, {}, *(candidates or ())])
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        if self._pending >= self.max_pending:
            rounds = -(-self._pending // max(1, self._batcher.max_batch))
            raise Busy(max(1, math.ceil(rounds * self.seconds_per_answer)))
        prompt = build_prompt(list(items), self.prompt, candidates)
        started = time.perf_counter()
        done = await self._ask(ChatRequest(key="new history", messages=prompt.messages()))
        text = done.text
        if prompt.follow_up:  # steps 1 and 2 written, now the candidates and step 3
            asked = ChatRequest(key="new history, step 3", messages=second_turn(prompt, text))
            text = joined_turns(text, (await self._ask(asked, self.follow_up_sampling)).text)
        seconds = time.perf_counter() - started
        self.seconds_per_answer = 0.8 * self.seconds_per_answer + 0.2 * seconds
        text = titled(text, offered(prompt.with_candidates))
        result = parse_rationale(text)
        steps = (result.summary, result.categories, result.items)
        return self._remember(key, Explanation(text, steps, "student", result.complete))

    async def _ask(
        self, request: ChatRequest, sampling: SamplingConfig | None = None
    ) -> Completion:
        """The worker's answer to ``request``, counted as pending until the worker is done
        with it, even if the client goes away first."""
        loop = asyncio.get_running_loop()
        future = self._batcher.submit(request, sampling or self.sampling)
        self._pending += 1
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self._pending -= 1

    def embed(self, text: str) -> np.ndarray:
        """The encoder's embedding of one text (zeros for none, as the run's tables).

        Blocking (a forward pass of the encoder): call it off the event loop.
        """
        with self._encode_lock:
            if not text.strip():
                return np.zeros(self.encoder.dim, dtype=np.float32)
            return self.encoder.encode([text])[0]

    def _remember(self, key: tuple, explanation: Explanation) -> Explanation:
        self._cache[key] = explanation
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return explanation

    def close(self) -> None:
        self._batcher.close()
