"""DELRec's three prompts (Sun & Zhang, arXiv 2406.11156; wording of the authors' prompt
files, ../shared/specs/delrec.md Sec. 3-4): Temporal Analysis (TA), Recommendation
Pattern Simulating (RPS) and LLM-based Sequential Recommendation (LSR).

Adaptation (part of :data:`TEMPLATE_VERSION`): the answer always comes last, so a causal
LM can answer too; RPS therefore lists the SR model's other predictions *before* asking
for the most likely one (the authors' T5 template has them after the mask). Titles are
untrusted: each is sanitised, capped and quoted (inner double quotes become single), so
no title can end the list, open a block or become a special token (the LM tokenizes them
as plain text). Without soft tokens the sentence that introduces them is left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from slimrec.llm.candidates import Answer, Piece, Soft
from slimrec.llm.sanitize import quoted
from slimrec.methods.delrec.config import PromptSettings

TEMPLATE_VERSION = "delrec-v1-answer-last"
SR_NAMES = {"sasrec": "SASRec", "gru4rec": "GRU4Rec", "caser": "Caser", "srgnn": "SR-GNN"}
_ARTICLE = re.compile(r"^(.*), (The|A|An)( \(\d{4}\))?$")


def clean_title(title: str, settings: PromptSettings) -> str:
    """The quoted, safe form of a title as every prompt and every answer writes it."""
    text = str(title).strip()
    if settings.rearrange_articles and (m := _ARTICLE.match(text)):
        text = f"{m.group(2)} {m.group(1)}{m.group(3) or ''}"
    return quoted(text, settings.max_title_chars)


class Templates:
    """The prompts of one run: ``Templates(settings, sr_backbone, n_soft, titles)``;
    ``titles[i]`` is item ``i``'s cleaned title (:func:`clean_title`)."""

    def __init__(
        self, settings: PromptSettings, sr_backbone: str, n_soft: int, titles: Sequence[str]
    ):
        self.s = settings
        self.model = SR_NAMES.get(sr_backbone, sr_backbone)
        self.n_soft = n_soft
        self.titles = titles

    def _list(self, items: Sequence[int]) -> str:
        return ", ".join(self.titles[int(i)] for i in items)

    def _pattern(self, verb: str) -> list[Piece]:
        """The task sentence and, with soft tokens, the pattern sentence holding them."""
        if not self.n_soft:
            return [verb]
        return [verb, f" The recommendation pattern of the {self.model} model is:",
                Soft(self.n_soft), "."]  # fmt: skip

    def ta(
        self,
        icl: Sequence[int],
        m: int,
        m1: int,
        user: Sequence[int],
        nxt: int,
        candidates: Sequence[int],
    ) -> list[Piece]:
        """Infer the user's most recent item X from the one that followed it, after one
        in-context demonstration (``icl``, ``m`` followed by ``m1``)."""
        s, t, n = self.s, self.titles, self.s.item_noun
        head = (
            f"Simulate the recommendation pattern of the {self.model} model to make a "
            f"temporal analysis of the {self.model} model by analysing the most recent {n} "
            f"in the user's history from the candidate set."
        )
        body = (
            f" The candidate set is: {self._list(candidates)}."
            f" The user has already {s.verb_past} {self._list(icl)}, [{n} M]. Then, the "
            f"next {n} the user plans to {s.verb} is {t[m1]}. The most recent {n} [{n} M] "
            f"in the user's history is {t[m]}. After that, the user has also {s.verb_past} "
            f"{self._list(user)}, [{n} X]. Then, the next {n} the user plans to {s.verb} is "
            f"{t[nxt]}. The most recent {n} [{n} X] in the user's history is:"
        )
        return [*self._pattern(head), body, Answer()]

    def rps(
        self, history: Sequence[int], sr_rest: Sequence[int], candidates: Sequence[int]
    ) -> list[Piece]:
        """Name the SR model's top-1 given its items 2..h."""
        s, n = self.s, self.s.item_noun
        head = (
            f"Simulate the recommendation pattern of the {self.model} model to predict the "
            f"next {n}s the user might {s.verb} from the candidate set based on the user's "
            f"history."
        )
        body = (
            f" The user's history is: {self._list(history)}. The candidate set is: "
            f"{self._list(candidates)}. The next {n}s the user will {s.verb} (predicted by "
            f"the {self.model} model), besides the most likely one, are: "
            f"{self._list(sr_rest)}. The most likely one is:"
        )
        return [*self._pattern(head), body, Answer()]

    def lsr(self, history: Sequence[int], candidates: Sequence[int]) -> list[Piece]:
        """Recommend the next item from the candidate set (stage 2 and test)."""
        s, n = self.s, self.s.item_noun
        head = (
            f"Refer to the recommendation pattern of the {self.model} model to predict the "
            f"next {n} the user might {s.verb} from the candidate set based on the user's "
            f"history."
        )
        body = (
            f" The user's history is: {self._list(history)}. The candidate set is: "
            f"{self._list(candidates)}. The next {n} the user will {s.verb} might be:"
        )
        return [*self._pattern(head), body, Answer()]
