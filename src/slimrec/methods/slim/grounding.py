"""Step 3 grounded in the catalog: which suggested items are real items, and which are new.

SLIM's third step names concrete items under each recommended category (Wang et al., WWW
2024, Sec. 3.1). A rationale is only as useful as those names are real: this module
resolves every suggestion line of step 3 to a catalog item -- exact title first (case,
punctuation, a trailing "(year)" and a leading or trailing article ignored), then the
closest title sharing a word with it, accepted above a similarity threshold -- and counts
how many resolve (*grounded*), how many of those the user has not already had in the
prompt's history (*new*), and how often one is the user's actual next item (*hit*).

The hit rate has a control: the same number of the catalog's most popular items the user
has not had (*popular hit*). A teacher whose suggestions name the next item less often
than a popularity list of the same length knows less about what users buy next than
the item counts do (docs/benchmarks.md, "Do the grounded suggestions point at the
future?"). Where the prompt offered candidates
(:mod:`~slimrec.methods.slim.candidate_pool`), a second control takes as many of the
pool's own best (*pool hit*): a teacher that picks among candidates earns its place only
above the ranking that offered them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

from slimrec.methods.slim.rationale_checks import LIST_MARK

_YEAR = re.compile(r"\(\s*\d{4}\s*\)")
_WORD = re.compile(r"[a-z0-9]+")
ARTICLES = {"the", "a", "an"}
THRESHOLD = 0.85


def normalize(title: str) -> str:
    """Lower-case words of a title without its year or a leading/trailing article."""
    words = _WORD.findall(_YEAR.sub(" ", title.lower()))
    while words and words[0] in ARTICLES:
        words = words[1:]
    while words and words[-1] in ARTICLES:
        words = words[:-1]
    return " ".join(words)


def suggestion_lines(step3: str) -> list[str]:
    """The suggestions of a step-3 text: its list lines, markers and emphasis stripped
    (a line ending in ':' heads a list -- a category, or the prompt echoed -- not an item)."""
    out = []
    for line in step3.splitlines():
        text = LIST_MARK.sub("", line).replace("**", "").strip().strip('"').strip()
        if not text or text.endswith(":"):
            continue
        out.append(text)
    return out


class CatalogIndex:
    """Resolves free-text item names to catalog item ids."""

    def __init__(self, titles: dict[int, str], threshold: float = THRESHOLD):
        self.threshold = threshold
        self.exact: dict[str, int] = {}
        self.norm: dict[int, str] = {}
        self.by_word: dict[str, list[int]] = defaultdict(list)
        self.resolved: dict[str, int | None] = {}  # students repeat the famous titles
        for item, title in titles.items():
            key = normalize(title)
            if not key:
                continue
            self.exact.setdefault(key, item)
            self.norm[item] = key
            for word in set(key.split()):
                self.by_word[word].append(item)

    @classmethod
    def of(cls, data, threshold: float = THRESHOLD) -> CatalogIndex:
        """The index of a :class:`~slimrec.data.PreparedDataset`'s real titles (an item
        without one is not named "item 12" here, or "Item 123" would resolve to it)."""
        if "title" not in data.items:
            return cls({}, threshold)
        titles = data.items.set_index("item")["title"].dropna().astype(str)
        return cls({int(i): t for i, t in titles.items() if t.strip()}, threshold)

    def resolve(self, name: str) -> int | None:
        """The catalog item ``name`` names, or None."""
        key = normalize(name)
        if not key:
            return None
        if key in self.exact:
            return self.exact[key]
        if key not in self.resolved:
            self.resolved[key] = self._closest(key)
        return self.resolved[key]

    def _closest(self, key: str) -> int | None:
        """The item whose title is most like ``key`` (normalised), at the threshold or above."""
        words = [w for w in set(key.split()) if w in self.by_word]
        if not words:
            return None
        # Few candidates to compare; ties broken by the word, never by set order (which
        # changes with each process's hash seed, and with it the report).
        rare = min(words, key=lambda w: (len(self.by_word[w]), w))
        best, score = None, 0.0
        for item in self.by_word[rare]:
            matcher = SequenceMatcher(None, key, self.norm[item])
            # ratio() <= quick_ratio() <= real_quick_ratio(), and the cheap bounds first: a
            # title that cannot reach the threshold, or beat the best so far, cannot change
            # the answer (thousands of titles share a word like "edition" in a catalog).
            bar = max(score, self.threshold)
            if matcher.real_quick_ratio() < bar or matcher.quick_ratio() < bar:
                continue
            ratio = matcher.ratio()
            if ratio > score:
                best, score = item, ratio
        return best if score >= self.threshold else None

    def ground(self, lines: Iterable[str]) -> list[int]:
        """The catalog items that suggestion ``lines`` (:func:`suggestion_lines`) name, in
        their order (a repeat is kept)."""
        found = (self.resolve_line(line) for line in lines)
        return [item for item in found if item is not None]

    def resolve_line(self, line: str) -> int | None:
        """A suggestion line: whole, else its parts around ':' / ' - ' / commas."""
        for candidate in _pieces(line):
            item = self.resolve(candidate)
            if item is not None:
                return item
        return None


def _pieces(line: str) -> Iterable[str]:
    yield line
    for sep in (":", " - ", " – "):
        if sep in line:
            head, _, tail = line.partition(sep)
            yield head
            yield tail
    yield from (p for p in line.split(",") if p.strip())


@dataclass(frozen=True)
class Grounding:
    """Totals over the rationales of one source."""

    users: int
    suggestions: int
    grounded: int
    new: int  # grounded and not in the user's prompt history
    hits: int  # users one of whose grounded suggestions is their next item
    # users whose next item is among as many of the most popular items they have not had
    # as they have distinct grounded suggestions (None: no popularity given)
    popular_hits: int | None = None
    # where candidates were offered: users whose next item is among as many of the
    # candidate pool's best as they have distinct grounded suggestions (None: none offered)
    pool_hits: int | None = None

    @property
    def grounded_share(self) -> float:
        return self.grounded / self.suggestions if self.suggestions else 0.0

    @property
    def new_share(self) -> float:
        return self.new / self.suggestions if self.suggestions else 0.0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.users if self.users else 0.0

    @property
    def popular_hit_rate(self) -> float | None:
        if self.popular_hits is None:
            return None
        return self.popular_hits / self.users if self.users else 0.0

    @property
    def pool_hit_rate(self) -> float | None:
        if self.pool_hits is None:
            return None
        return self.pool_hits / self.users if self.users else 0.0


def grounding(
    step3: Sequence[str],
    histories: Sequence[Iterable[int]],
    next_items: Sequence[Iterable[int]],
    index: CatalogIndex,
    popular: Sequence[int] | None = None,
    pool: Sequence[Sequence[int]] | None = None,
    choices: Sequence[dict[str, int]] | None = None,
) -> Grounding:
    """Totals for rationales ``step3`` (one per user) against each user's prompt history
    and next item(s) (the targets the rationale has not seen); ``popular``: item ids, most
    popular first, for the popularity control; ``pool``: per user, the candidates its
    prompt offered, best first by the pool's own ranking, for the pool control;
    ``choices``: per user, each offered candidate's title as the prompt showed it -> its
    item (a pick is that item, even where the prompt cut a long title)."""
    suggestions = grounded = new = hits = popular_hits = pool_hits = 0
    rankings = pool if pool is not None else [()] * len(step3)
    picks = choices if choices is not None else [{}] * len(step3)
    rows = zip(step3, histories, next_items, rankings, picks, strict=True)
    for text, seen, targets, ranked, offered_as in rows:
        seen, targets = set(seen), set(targets)
        lines = suggestion_lines(text or "")
        suggestions += len(lines)
        found = [offered_as.get(line) or index.resolve_line(line) for line in lines]
        found = [item for item in found if item is not None]
        grounded += len(found)
        new += sum(i not in seen for i in found)
        hits += bool(targets & set(found))
        if popular is not None:
            popular_hits += bool(targets & set(most_popular(popular, len(set(found)), seen)))
        pool_hits += bool(targets & set(list(ranked)[: len(set(found))]))
    return Grounding(
        len(step3),
        suggestions,
        grounded,
        new,
        hits,
        popular_hits if popular is not None else None,
        pool_hits if pool is not None else None,
    )


def most_popular(popular: Sequence[int], k: int, seen: set[int]) -> list[int]:
    """The first ``k`` items of ``popular`` (most popular first) not in ``seen``."""
    out: list[int] = []
    for item in popular:
        if len(out) >= k:
            break
        if item not in seen:
            out.append(item)
    return out


def popularity_order(data) -> list[int]:
    """Item ids of a :class:`~slimrec.data.PreparedDataset`, most interactions in the
    training parts first (ties: the lower id), padding left out."""
    counts = data.item_popularity("train")[1:]
    return (np.argsort(-counts, kind="stable") + 1).tolist()


def run_grounding(
    rationales, data, hold_out: int, index: CatalogIndex | None = None, prompt=None
) -> Grounding:
    """:func:`grounding` of a rationale table (``user``, ``step3``) written for ``data``
    with ``hold_out`` training items left out of each prompt: the history is what the
    prompt could show, the next items everything after it (held-out, validation, test);
    with the popularity control of the training parts' counts, and, where ``prompt`` (its
    :class:`~slimrec.methods.slim.prompts.PromptConfig`) offered candidates, the pool's."""
    from slimrec.data.prepared import rationale_cutoff
    from slimrec.methods.slim.prompts import shown_title
    from slimrec.methods.slim.teach import candidate_pool, offered_items, prompt_items

    if index is None:
        index = CatalogIndex.of(data)
    shown, futures = [], []
    for seq in data.sequences:
        cut = rationale_cutoff(len(seq) - 2, hold_out)  # of the training part s[:-2]
        shown.append(seq[:cut].tolist())
        futures.append(seq[cut:].tolist())
    users = rationales["user"].astype(int).tolist()
    step3 = rationales["step3"].fillna("").astype(str).tolist()
    histories, nexts = [shown[u] for u in users], [futures[u] for u in users]
    pool = choices = None
    if prompt is not None and prompt.candidates:
        catalog = prompt_items(data.items)
        ranker = candidate_pool(data, prompt)
        pool = [offered_items(ranker, h, prompt, catalog) for h in histories]
        choices = [{shown_title(catalog[i], prompt): i for i in offered} for offered in pool]
    return grounding(step3, histories, nexts, index, popularity_order(data), pool, choices)
