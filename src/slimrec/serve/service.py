"""The recommendation service over a finished run: what the API and the CLI both call.

:class:`RecommendService` puts together the run's catalog, one trained model
(:class:`~slimrec.serve.scorer.Scorer`) and the rationales
(:class:`~slimrec.serve.explainer.Explainer`), and answers two questions:

* :meth:`for_user` -- a known user: their whole history, their own rationale from the
  run, no generation (milliseconds);
* :meth:`for_history` -- any history: the student writes a rationale for it (when the
  run has a student), the model scores with its embedding.

Results are plain dataclasses (:class:`Recommendation`); the API turns them into JSON and
the CLI into a table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from slimrec.data.prepared import PreparedDataset
from slimrec.devices import pick_device
from slimrec.errors import ConfigError
from slimrec.machine import set_torch_threads
from slimrec.methods.slim.candidate_pool import shown_order
from slimrec.methods.slim.grounding import CatalogIndex, suggestion_lines
from slimrec.methods.slim.prompts import shown_title
from slimrec.methods.slim.teach import (
    candidate_pool,
    offered_items,
    prompt_histories,
    prompt_items,
)
from slimrec.pipeline.artifacts import RunArtifacts
from slimrec.serve.catalog import Catalog, Item
from slimrec.serve.explainer import Explainer, Explanation, known_rationales
from slimrec.serve.scorer import Scorer


@dataclass(frozen=True)
class Scored:
    item: Item
    score: float


MAX_SUGGESTIONS = 50  # step 3 asks for 5 x per_category (<= 10) items
MAX_SUGGESTION_CHARS = 200


@dataclass(frozen=True)
class Suggestion:
    """One line of the rationale's step 3, and the catalog item it names (None if none)."""

    text: str
    item: Item | None


@dataclass
class Recommendation:
    """Top-k items for one history, with the rationale behind them (if any)."""

    history: list[Item]
    items: list[Scored]
    explanation: Explanation | None
    user: str | None = None  # the original user id, for known users
    model: dict[str, str | int | None] = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)


class RecommendService:
    """Recommendations with explanations from run ``run_dir`` (see the module docstring)."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        method: str = "slim",
        backbone: str | None = None,
        seed: int = 0,
        device: str = "auto",
        student: bool = True,
        max_pending: int = 8,
        threads: int | None = None,
    ):
        # Process-wide. One forward pass of a small recommender is ~2 ms on one thread but
        # can take 20x longer with two OpenMP threads on a busy 2-core machine
        # (docs/benchmarks.md, "Serving"): `slimrec serve` defaults to 1; None takes the
        # cores other work leaves idle, like every other job.
        set_torch_threads(threads)
        device = str(pick_device(device))  # auto: CUDA where there is one, as everywhere
        self.artifacts = RunArtifacts(run_dir)
        # Which rationales the model reads, as the run configured it.
        self.reads = self.artifacts.config.method(method).needs().user_text
        self.fit = self.artifacts.fit(method, backbone, seed)
        self.dataset = PreparedDataset.load(self.artifacts.data_dir)
        self.catalog = Catalog(self.dataset)
        # Step 3's suggestions resolved to catalog items, as the run's report counts them.
        self.grounder = CatalogIndex.of(self.dataset)
        # What the student's prompt shows of each item, built as for training prompts.
        self.prompt_items = prompt_items(self.dataset.items)
        self.scorer = Scorer(self.fit.folder, device=device)
        if self.scorer.n_items != self.catalog.n_items:
            raise ConfigError(
                f"the model has {self.scorer.n_items} items, the run's data {self.catalog.n_items}",
                where=self.fit.folder,
            )
        # Known users' rationales: the ones the model was trained with, else the student's.
        source = self.reads[0] if self.reads else "student"
        file = self.artifacts.rationales(source)
        if file is None and source == "student":
            source, file = "teacher", self.artifacts.rationales("teacher")
        self.known = known_rationales(file, source)
        self.explainer = self._explainer(student, device, max_pending, threads)
        # where the run's prompt offered candidates, a new history is offered them as well,
        # and a pick links to the item offered under its title
        self.offering = self.artifacts.config.teacher.prompt
        self.pool = candidate_pool(self.dataset, self.offering)
        self.shown = prompt_histories(self.dataset, self.offering) if self.pool else []
        if self.scorer.reads_text and self.explainer is None:
            self.new_histories = "the model reads a rationale and the run has no student"
        else:
            self.new_histories = ""
        self.model_info = {
            "method": method,
            "backbone": self.fit.backbone,
            "seed": self.fit.seed,
            "run": self.artifacts.run_dir.name,  # the folder name: no server path leaks
        }

    def _explainer(
        self, student: bool, device: str, max_pending: int, threads: int | None
    ) -> Explainer | None:
        adapter = self.artifacts.adapter
        if not student or adapter is None:
            return None
        from slimrec.llm.backends.hf import HFBackend
        from slimrec.methods.slim.student.reason import ReasonConfig, base_of, student_sampling
        from slimrec.text import TextEncoder

        config = self.artifacts.config
        base = base_of(ReasonConfig(base_model=config.student.base_model, adapter=str(adapter)))
        section = config.reason
        if section.endpoint is not None:  # the student runs elsewhere (e.g. vLLM on GPUs)
            backend = section.endpoint.build()
        elif section.engine == "llamacpp":  # one history at a time: llama.cpp's forte
            from slimrec.llm.backends.llamacpp import LlamaCppBackend

            backend = LlamaCppBackend(base, adapter=str(adapter), parallel=4, threads=threads)
        else:
            backend = HFBackend(
                base,
                adapter=str(adapter),
                device=device,
                dtype=section.dtype,
                batch_size=min(section.batch_size, 8),
                threads=threads,
                progress=False,
            )
        backend.check()
        encoder = TextEncoder(config.encoder, cache=None, device=device)
        prompt = config.teacher.prompt
        sampling = student_sampling(section.sampling, prompt, section.structured)
        follow_up = student_sampling(section.sampling, prompt, section.structured, turn=2)
        return Explainer(
            backend,
            prompt,
            sampling,
            encoder,
            max_pending=max_pending,
            follow_up_sampling=follow_up,
        )

    # -- questions ------------------------------------------------------------------

    def for_user(self, user: int, k: int) -> Recommendation:
        """Top ``k`` for known user index ``user`` from their whole history."""
        history = self.dataset.sequences[user].tolist()
        ranked = self.scorer.for_user(user, history, k)
        offered = self._offered(self.shown[user]) if self.pool is not None else []
        raw = self.catalog.user_raw[user]
        return self._result(history, ranked, self.known.get(user), raw, offered)

    def _offered(self, history: Sequence[int]) -> list[int]:
        """The candidates a prompt for ``history`` offered, best first (as in training)."""
        assert self.pool is not None
        return offered_items(self.pool, history, self.offering, self.prompt_items)

    async def for_history(self, history: Sequence[int], k: int) -> Recommendation:
        """Top ``k`` for a history of dense item ids (the student explains it).

        Raises :class:`~slimrec.serve.explainer.Busy` when the student's queue is full,
        and :class:`~slimrec.errors.ConfigError` when the model needs a rationale that
        this run cannot write.
        """
        if self.new_histories:
            raise ConfigError(f"cannot serve new histories: {self.new_histories}")
        explanation = None
        vector = None
        if self.explainer is not None:
            listed = None
            if self.pool is not None:
                listed = [self.prompt_items[i] for i in shown_order(self._offered(history))]
            explanation = await self.explainer.explain(
                [self.prompt_items[i] for i in history], listed
            )
            if self.scorer.reads_text:
                text = explanation.field(self.reads[1] if self.reads else "response")
                vector = await asyncio.to_thread(self.explainer.embed, text)
        ranked = self.scorer.for_history(list(history), k, vector)
        offered = self._offered(history) if self.pool is not None else []
        return self._result(list(history), ranked, explanation, None, offered)

    def _result(self, history, ranked, explanation, user, offered=()) -> Recommendation:
        items = [
            Scored(self.catalog.items[i], s)
            for i, s in zip(ranked.items, ranked.scores, strict=True)
        ]
        history_items = [self.catalog.items[i] for i in history]
        suggestions = self._suggestions(explanation, offered) if explanation is not None else []
        return Recommendation(history_items, items, explanation, user, self.model_info, suggestions)

    def _suggestions(self, explanation: Explanation, offered: Sequence[int]) -> list[Suggestion]:
        """Step 3's lines, each linked to the item it names: a candidate the prompt offered
        under that title (which may be cut), else the catalog's closest title."""
        picks = {shown_title(self.prompt_items[i], self.offering): i for i in offered}
        out = []
        for line in suggestion_lines(explanation.steps[2])[:MAX_SUGGESTIONS]:
            item = picks.get(line)  # an offered title: a dict lookup, whatever its length
            line = line[:MAX_SUGGESTION_CHARS]  # model output: capped before it is matched
            item = item if item is not None else self.grounder.resolve_line(line)
            out.append(Suggestion(line, None if item is None else self.catalog.items[item]))
        return out

    def close(self) -> None:
        if self.explainer is not None:
            self.explainer.close()
