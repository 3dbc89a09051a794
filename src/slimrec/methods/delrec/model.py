"""DELRec's recommender: an LLM ranks the candidate list written in its prompt.

Sun & Zhang, arXiv 2406.11156 (../shared/specs/delrec.md Sec. 4-5, 10.6). The prompt holds
the user's recent titles, the soft prompt P distilled from the SR model, and the
candidates in a seeded order; a candidate's score is the (mean) log-probability of its
title as the answer (:class:`~slimrec.llm.candidates.CandidateLM`). The SR model is not
called at test time: it reaches the LLM only through P.

It is a :class:`~slimrec.backbones.SequentialRecommender` for the candidate protocols
only (``predict``); it has no item table and no user vector, so full ranking and the
order diagnostic's cosine do not apply (one line says so). Its state dict is P alone;
the LLM (and its adapter, saved by peft) stays outside the module tree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from slimrec.backbones.base import SequentialRecommender
from slimrec.backbones.items import ItemEncoder
from slimrec.errors import ConfigError
from slimrec.llm.candidates import CandidateLM, Piece, Reduce
from slimrec.methods.delrec.examples import Example
from slimrec.methods.delrec.templates import Templates


class _NoItemTable(ItemEncoder):
    """DELRec scores candidates from their titles: there is no item table to build."""

    def __init__(self, n_items: int):
        super().__init__()
        self.n_items, self.dim = n_items, 0

    def forward(self) -> Tensor:
        raise ConfigError(
            "DELRec ranks the candidate list in its prompt: it has no item table",
            fix="evaluate it under the sampled protocol (eval.protocols: [sampled])",
        )

    def forward_ids(self, ids: Tensor) -> Tensor:
        return self.forward()


class _Outside:
    """Holds the LLM outside the module tree (never saved with P, never moved by it)."""

    def __init__(self, lm: CandidateLM):
        self.lm = lm


class DelrecModel(SequentialRecommender):
    """``DelrecModel(lm, templates, soft, ...)``; ``soft`` ``[n_tokens, d]`` is P."""

    has_user_vectors = False

    def __init__(
        self,
        lm: CandidateLM,
        templates: Templates,
        soft: Tensor,
        *,
        scoring: Reduce = "mean",
        history_items: int = 10,
        seed: int = 0,
    ):
        super().__init__(_NoItemTable(len(templates.titles) - 1))
        self.outside = _Outside(lm)
        self.templates = templates
        # A parameter even with 0 rows: it tells scorers the device.
        self.soft = nn.Parameter(soft.detach().clone().float(), requires_grad=False)
        self.scoring: Reduce = scoring
        self.history_items = history_items
        self.seed = seed

    def visible_window(self, max_len: int) -> int:
        return min(max_len, self.history_items)  # its prompt holds the last few titles

    @property
    def lm(self) -> CandidateLM:
        return self.outside.lm

    # -- scoring -----------------------------------------------------------------------------

    def prompt_scores(self, pieces: Sequence[Piece], candidates: Sequence[int]) -> Tensor:
        """``[C]`` scores of ``candidates`` (in their prompt order) after ``pieces``."""
        lm, titles = self.lm, self.templates.titles
        answers = [lm.answer_ids(titles[int(c)]) for c in candidates]
        soft = self.soft if len(self.soft) else None
        return lm.scores(lm.prompt(pieces), answers, soft, self.scoring)

    def pieces(self, example: Example) -> list[Piece]:
        """The prompt of a stage-1 or stage-2 example."""
        t, e = self.templates, example.extra
        if example.task == "ta":
            return t.ta(e["icl"], e["m"], e["m1"], e["user_part"], e["next"], example.candidates)  # type: ignore[arg-type]
        if example.task == "rps":
            return t.rps(example.history, e["sr_rest"], example.candidates)  # type: ignore[arg-type]
        return t.lsr(example.history, example.candidates)

    def example_scores(self, example: Example) -> Tensor:
        return self.prompt_scores(self.pieces(example), example.candidates)

    def predict(
        self, seqs: Tensor, lengths: Tensor, candidates: Tensor, users: Tensor | None = None
    ) -> Tensor:
        """``[B, C]`` scores of ``candidates``. Each list is written in a seeded shuffle of
        its items (fixed by the user and the history's last item), whatever their column
        order: the target's column (0 in the evaluation) never shows in the prompt."""
        out = torch.full(candidates.shape, float("-inf"))
        for b in range(len(seqs)):
            history = seqs[b, : int(lengths[b])].tolist()[-self.history_items :]
            items = sorted({int(c) for c in candidates[b].tolist() if c > 0})
            user = int(users[b]) if users is not None else 0
            order = np.random.default_rng([self.seed, user, history[-1]]).permutation(len(items))
            shown = [items[i] for i in order]
            scores = self.prompt_scores(self.templates.lsr(history, shown), shown).cpu()
            by_item = dict(zip(shown, scores.tolist(), strict=True))
            for c, item in enumerate(candidates[b].tolist()):
                if item > 0:
                    out[b, c] = by_item[int(item)]
        return out.to(seqs.device)

    def full_sort_predict(
        self, seqs: Tensor, lengths: Tensor, users: Tensor | None = None
    ) -> Tensor:
        return self.item_encoder()  # raises: one line naming the fix

    def user_vectors(self, seqs, lengths, users=None, item_table=None, fuse=None) -> Tensor:
        raise ConfigError(
            "DELRec has no user vector: it ranks the candidates in its prompt",
            fix="leave it out of the order diagnostic's cosine (the metric change applies)",
        )
