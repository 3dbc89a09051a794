"""Batched decoding that never spends compute on finished rows: compaction and refill.

Answers stop at different lengths (a rationale ends after 80 tokens, its neighbour runs
to the cap), so a plain batched loop keeps multiplying rows that are already done. Here
each decode step runs only the rows still generating: a row that emits a stop token or
reaches ``max_new_tokens`` is handed out at once and removed from the batch, its KV-cache
rows dropped (*compaction*), and waiting prompts are prefilled and merged into the freed
slots (*refill*, i.e. continuous batching), so the matmuls keep their full width until
the queue runs dry.

Rows are left-padded to a common right edge: merging a new group pads the narrower KV
cache on the left, position ids count each row's own real tokens, and columns that are
padding for every remaining row are trimmed off, so attention never grows beyond the
longest live row. Greedy decoding picks the argmax of the same logits a one-at-a-time
``generate`` sees (up to float rounding of a different batch shape); sampled rows each
draw from their own generator (see :mod:`slimrec.llm.backends.hf`), so neither depends
on which prompts share the batch.

Prompts of one run share a long opening (chat template, system message, instructions up
to the user's history: ~70 of ~340 tokens for SLIM's prompt). That *shared prefix* is run
once, its KV cache copied into every row, and only each row's own suffix is prefilled,
padding placed between prefix and suffix (``[prefix][pads][suffix]``); the attention
mask hides the pads and position ids continue from the prefix, so every row sees exactly
the positions and keys an unpadded prompt would.

Small greedy students fall into loops (the same list line again and again until the
cap). ``no_repeat_ngram=n`` forbids any token that would repeat an n-gram the row has
already generated (the prompt is not counted: restating a title once is fine); each row
keeps a map from its (n-1)-grams to the tokens that followed them, updated per step.

``allow(tokens, candidate)`` holds answers to a shape (:mod:`slimrec.llm.constrain`): a
picked token it refuses is masked and the row picks again (greedy: the next best token;
sampled: a new draw from the row's own generator), a few times, then the best allowed
token by logit is taken; a row with no allowed token in sight ends there, unfinished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

GROW = 64  # spare KV-cache columns: one reallocation per this many decode steps
MIN_SHARED = 8  # a shorter common prefix is not worth its extra forward pass

RETRIES = 8  # masked re-picks of a refused token before scanning the ranked vocabulary
SCAN = 4096  # ranked tokens tried after that; none allowed ends the row

# (logits [rows, vocab], generators of those rows or None) -> next token per row
Picker = Callable[[torch.Tensor, list[Any] | None], torch.Tensor]
# (the row's tokens so far, a candidate) -> may the candidate come next?
Allow = Callable[[list[int], int], bool]
# (logits, generators, each row's tokens so far) -> next tokens, rows left with no choice
Chooser = Callable[
    [torch.Tensor, list[Any] | None, list[list[int]]], tuple[torch.Tensor, list[bool]]
]


@dataclass
class _Batch:
    """The live rows: request index, tokens so far, KV cache, mask and next inputs."""

    index: list[int] = field(default_factory=list)
    tokens: list[list[int]] = field(default_factory=list)
    gens: list[Any] | None = None
    cache: Any = None  # transformers DynamicCache, keys/values [rows, heads, width, dim]
    mask: torch.Tensor | None = None  # [rows, width]: 1 = real token
    last: torch.Tensor | None = None  # [rows] token to feed next
    pos: torch.Tensor | None = None  # [rows] position id of ``last``
    seen: list[dict[tuple[int, ...], set[int]]] | None = None  # per row: (n-1)-gram -> next
    stuck: list[bool] = field(default_factory=list)  # per row: its last pick was no choice

    def __len__(self) -> int:
        return len(self.index)


def decode(
    model: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop_ids: set[int],
    pad_id: int,
    pick: Picker,
    generators: Callable[[list[list[int]]], list[Any]] | None = None,
    batch_size: int = 64,
    refill: bool = True,
    refill_min: int | None = None,
    share_prefix: bool = True,
    no_repeat_ngram: int = 0,
    allow: Allow | None = None,
    on_step: Callable[[int], None] | None = None,
    stats: dict[str, int] | None = None,
) -> Iterator[tuple[int, list[int], bool]]:
    """Yield ``(prompt index, new tokens (stop token included), ended by a stop)`` per row.

    Rows come out as they finish. Prompts are taken longest first (little padding per
    group); with ``refill`` new prompts join once ``refill_min`` slots are free
    (default a quarter of the batch), else only when the batch is empty. With
    ``share_prefix`` the prompts' common opening is computed once, and with
    ``no_repeat_ngram`` > 1 no row repeats one of its own n-grams; ``allow`` filters each
    row's next token (module docstring).
    ``on_step`` gets the number of tokens each decode step produced (progress bars);
    ``stats``, if given, receives ``shared_prefix`` (tokens) and ``prefilled`` (prompt
    tokens run through the model, padding excluded).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    queue = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    queue.reverse()  # pop() from the end takes the longest first
    free_at = refill_min or max(1, batch_size // 4)
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=model.device)
    choose = _chooser(pick, allow, min(stop_ids, default=pad_id))
    stats = {} if stats is None else stats
    live = _Batch()
    with torch.inference_mode():
        shared = _shared_prefix(model, prompts) if share_prefix else None
        stats["shared_prefix"] = shared.length if shared else 0
        stats["prefilled"] = stats["shared_prefix"]
        while queue or len(live):
            room = batch_size - len(live)
            if queue and (len(live) == 0 or (refill and room >= free_at)):
                group = [queue.pop() for _ in range(min(room, len(queue)))]
                rows = [list(prompts[i]) for i in group]
                stats["prefilled"] += sum(len(r) for r in rows) - len(rows) * stats["shared_prefix"]
                new = _prefill(model, rows, pad_id, choose, generators, shared)
                new.index = group
                if no_repeat_ngram > 1:
                    new.seen = [{} for _ in group]
                live = _merge(live, new) if len(live) else new
                if on_step:
                    on_step(len(group))
            else:
                _step(model, live, choose, no_repeat_ngram)
                if on_step:
                    on_step(len(live))
            # Rows whose newest token is a stop, or that hit the cap, are done.
            newest = live.last
            ended = torch.isin(newest, stops).tolist()
            keep = []
            for r, (idx, toks) in enumerate(zip(live.index, live.tokens, strict=True)):
                if live.stuck[r]:  # no allowed token: ends here, as cut as at the cap
                    yield idx, toks[:-1], False
                elif ended[r] or len(toks) >= max_new_tokens:
                    yield idx, toks, bool(ended[r])
                else:
                    keep.append(r)
            if len(keep) < len(live):
                live = _select(live, keep)


@dataclass
class _Shared:
    """The KV cache of the prompts' common opening, one row per layer."""

    length: int
    keys: list[torch.Tensor]  # per layer [1, heads, length, dim]
    values: list[torch.Tensor]


def common_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all ``prompts`` have in common."""
    if not prompts:
        return 0
    first, length = prompts[0], min(len(p) for p in prompts)
    for p in prompts[1:]:
        n = 0
        while n < length and p[n] == first[n]:
            n += 1
        length = n
    return length


def _shared_prefix(model: Any, prompts: Sequence[Sequence[int]]) -> _Shared | None:
    """Run the prompts' longest common prefix once; None if too short to pay off.

    At least one token of every prompt stays out of the prefix: a row's first new
    token comes from the logits of its own last prompt token.
    """
    if len(prompts) < 2:
        return None
    length = min(common_prefix_length(prompts), min(len(p) for p in prompts) - 1)
    if length < MIN_SHARED:
        return None
    ids = torch.tensor([list(prompts[0][:length])], device=model.device)
    out = model(
        input_ids=ids,
        position_ids=torch.arange(length, device=model.device)[None],
        past_key_values=_new_cache(),
        use_cache=True,
        logits_to_keep=1,
    )
    layers = _layers(out.past_key_values)
    return _Shared(length, [la.keys for la in layers], [la.values for la in layers])


def _prefill(
    model: Any,
    prompts: list[list[int]],
    pad_id: int,
    choose: Chooser,
    generators: Callable[[list[list[int]]], list[Any]] | None,
    shared: _Shared | None = None,
) -> _Batch:
    """Run a group of prompts (left-padded, or after the shared prefix); cache and first token."""
    dev = model.device
    skip = shared.length if shared else 0
    rest = [p[skip:] for p in prompts]
    width = max(len(p) for p in rest)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in rest], device=dev)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rest], device=dev)
    pos = skip + (mask.cumsum(-1) - 1).clamp(min=0)
    cache = _new_cache()
    if shared:
        for layer, (k, v) in enumerate(zip(shared.keys, shared.values, strict=True)):
            rows = (len(prompts), -1, -1, -1)
            cache.update(k.expand(rows), v.expand(rows), layer)  # copied into own rows
        mask = torch.cat([mask.new_ones((len(prompts), skip)), mask], dim=1)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    gens = generators(prompts) if generators else None
    nxt, stuck = choose(out.logits[:, -1, :].float(), gens, [[] for _ in prompts])
    return _Batch(
        tokens=[[t] for t in nxt.tolist()],
        stuck=stuck,
        gens=gens,
        cache=out.past_key_values,
        mask=mask,
        last=nxt,
        pos=pos[:, -1] + 1,
    )


def _step(model: Any, live: _Batch, choose: Chooser, no_repeat_ngram: int = 0) -> None:
    """One decode step of every live row, in place."""
    live.mask = torch.cat([live.mask, torch.ones_like(live.mask[:, :1])], dim=-1)
    out = model(
        input_ids=live.last[:, None],
        attention_mask=live.mask,
        position_ids=live.pos[:, None],
        past_key_values=live.cache,
        use_cache=True,
        logits_to_keep=1,
    )
    live.cache = out.past_key_values
    logits = out.logits[:, -1, :].float()
    if live.seen is not None:
        _ban_repeats(logits, live.tokens, live.seen, no_repeat_ngram)
    nxt, live.stuck = choose(logits, live.gens, live.tokens)
    for r, (toks, t) in enumerate(zip(live.tokens, nxt.tolist(), strict=True)):
        toks.append(t)
        if live.seen is not None and len(toks) >= no_repeat_ngram:
            live.seen[r].setdefault(tuple(toks[-no_repeat_ngram:-1]), set()).add(t)
    live.last = nxt
    live.pos = live.pos + 1


def _chooser(pick: Picker, allow: Allow | None, end_id: int) -> Chooser:
    """``pick``, with each row's choice checked by ``allow`` (module docstring)."""

    def choose(
        logits: torch.Tensor, gens: list[Any] | None, tokens: list[list[int]]
    ) -> tuple[torch.Tensor, list[bool]]:
        picked = pick(logits, gens)
        stuck = [False] * len(tokens)
        if allow is None:
            return picked, stuck
        picks = picked.tolist()
        for r, toks in enumerate(tokens):
            if allow(toks, picks[r]):
                continue
            row, gen = logits[r : r + 1].clone(), [gens[r]] if gens is not None else None
            token = picks[r]
            for _ in range(RETRIES):
                row[0, token] = float("-inf")
                token = int(pick(row, gen)[0])
                if allow(toks, token):
                    break
            else:
                ranked = row[0].argsort(descending=True)[:SCAN].tolist()
                token = next((t for t in ranked if allow(toks, t)), end_id)
                stuck[r] = not allow(toks, token)
            picks[r] = token
        return torch.tensor(picks, dtype=picked.dtype, device=picked.device), stuck

    return choose


def _ban_repeats(logits: torch.Tensor, tokens: list[list[int]], seen: list[dict], n: int) -> None:
    """Set to -inf each row's tokens that would complete an n-gram it already made."""
    for r, toks in enumerate(tokens):
        if len(toks) < n - 1:
            continue
        banned = seen[r].get(tuple(toks[len(toks) - n + 1 :]))
        if banned:
            logits[r, list(banned)] = float("-inf")


def _new_cache() -> Any:
    from transformers.cache_utils import Cache

    return Cache(layer_class_to_replicate=_growing_layer_class())


_LAYER_CLASS: type | None = None


def _growing_layer_class() -> type:
    """A KV-cache layer writing into preallocated room instead of concatenating.

    transformers' DynamicLayer concatenates every step, copying the whole cache: with
    32 rows of 400 tokens that copy cost as much as the step's matmuls on this CPU.
    This layer keeps ``GROW`` spare columns and hands attention a view of the used part.
    """
    global _LAYER_CLASS
    if _LAYER_CLASS is None:
        from transformers.cache_utils import DynamicLayer

        class GrowingLayer(DynamicLayer):
            def update(self, key_states, value_states, *args, **kwargs):
                if not self.is_initialized:
                    self.lazy_initialization(key_states, value_states)
                    self.set(key_states, value_states)
                    return self.keys, self.values
                used, new = self.keys.shape[-2], key_states.shape[-2]
                if used + new > self._kbuf.shape[-2]:
                    self.set(self.keys, self.values, room=new)
                self._kbuf[:, :, used : used + new] = key_states
                self._vbuf[:, :, used : used + new] = value_states
                self.keys = self._kbuf[:, :, : used + new]
                self.values = self._vbuf[:, :, : used + new]
                return self.keys, self.values

            def set(self, keys, values, room: int = 0) -> None:
                """Hold ``keys``/``values`` (copied) with ``GROW + room`` spare columns."""
                b, h, t, d = keys.shape
                self._kbuf = keys.new_empty((b, h, t + room + GROW, d))
                self._vbuf = values.new_empty((b, h, t + room + GROW, d))
                self._kbuf[:, :, :t] = keys
                self._vbuf[:, :, :t] = values
                self.keys, self.values = self._kbuf[:, :, :t], self._vbuf[:, :, :t]

        _LAYER_CLASS = GrowingLayer
    return _LAYER_CLASS


def _layers(cache: Any) -> list[Any]:
    return list(cache.layers)


def _select(live: _Batch, keep: list[int]) -> _Batch:
    """Only the ``keep`` rows, with columns that are padding for all of them trimmed."""
    if not keep:
        return _Batch()
    rows = torch.tensor(keep, device=live.mask.device)
    mask = live.mask.index_select(0, rows)
    first = int(mask.any(0).long().argmax())  # leading all-padding columns
    for layer in _layers(live.cache):
        layer.set(
            layer.keys.index_select(0, rows)[:, :, first:],
            layer.values.index_select(0, rows)[:, :, first:],
        )
    return _Batch(
        index=[live.index[r] for r in keep],
        tokens=[live.tokens[r] for r in keep],
        gens=[live.gens[r] for r in keep] if live.gens is not None else None,
        seen=[live.seen[r] for r in keep] if live.seen is not None else None,
        stuck=[live.stuck[r] for r in keep],
        cache=live.cache,
        mask=mask[:, first:],
        last=live.last.index_select(0, rows),
        pos=live.pos.index_select(0, rows),
    )


def _merge(a: _Batch, b: _Batch) -> _Batch:
    """Rows of ``a`` then ``b`` in one batch, the narrower cache left-padded to match."""
    wa, wb = a.mask.shape[1], b.mask.shape[1]
    width = max(wa, wb)

    def pad(t: torch.Tensor, w: int, dim: int) -> torch.Tensor:
        if w == width:
            return t
        shape = list(t.shape)
        shape[dim] = width - w
        return torch.cat([t.new_zeros(shape), t], dim=dim)

    for la, lb in zip(_layers(a.cache), _layers(b.cache), strict=True):
        la.set(
            torch.cat([pad(la.keys, wa, 2), pad(lb.keys, wb, 2)], dim=0),
            torch.cat([pad(la.values, wa, 2), pad(lb.values, wb, 2)], dim=0),
        )
    gens = a.gens + b.gens if a.gens is not None and b.gens is not None else None
    seen = a.seen + b.seen if a.seen is not None and b.seen is not None else None
    return _Batch(
        index=a.index + b.index,
        tokens=a.tokens + b.tokens,
        gens=gens,
        seen=seen,
        stuck=a.stuck + b.stuck,
        cache=a.cache,
        mask=torch.cat([pad(a.mask, wa, 1), pad(b.mask, wb, 1)], dim=0),
        last=torch.cat([a.last, b.last]),
        pos=torch.cat([a.pos, b.pos]),
    )
