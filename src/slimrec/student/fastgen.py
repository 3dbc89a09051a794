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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

GROW = 64  # spare KV-cache columns: one reallocation per this many decode steps

# (logits [rows, vocab], generators of those rows or None) -> next token per row
Picker = Callable[[torch.Tensor, list[Any] | None], torch.Tensor]


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
    on_step: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, list[int], bool]]:
    """Yield ``(prompt index, new tokens (stop token included), ended by a stop)`` per row.

    Rows come out as they finish. Prompts are taken longest first (little padding per
    group); with ``refill`` new prompts join once ``refill_min`` slots are free
    (default a quarter of the batch), else only when the batch is empty. ``on_step``
    gets the number of tokens each decode step produced (progress bars).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    queue = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    queue.reverse()  # pop() from the end takes the longest first
    free_at = refill_min or max(1, batch_size // 4)
    stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=model.device)
    live = _Batch()
    with torch.inference_mode():
        while queue or len(live):
            room = batch_size - len(live)
            if queue and (len(live) == 0 or (refill and room >= free_at)):
                group = [queue.pop() for _ in range(min(room, len(queue)))]
                new = _prefill(model, [list(prompts[i]) for i in group], pad_id, pick, generators)
                new.index = group
                live = _merge(live, new) if len(live) else new
                if on_step:
                    on_step(len(group))
            else:
                _step(model, live, pick)
                if on_step:
                    on_step(len(live))
            # Rows whose newest token is a stop, or that hit the cap, are done.
            newest = live.last
            ended = torch.isin(newest, stops).tolist()
            keep = []
            for r, (idx, toks) in enumerate(zip(live.index, live.tokens, strict=True)):
                if ended[r] or len(toks) >= max_new_tokens:
                    yield idx, toks, bool(ended[r])
                else:
                    keep.append(r)
            if len(keep) < len(live):
                live = _select(live, keep)


def _prefill(
    model: Any,
    prompts: list[list[int]],
    pad_id: int,
    pick: Picker,
    generators: Callable[[list[list[int]]], list[Any]] | None,
) -> _Batch:
    """Run a left-padded group of prompts; their cache and first new token."""
    dev = model.device
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=dev)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=dev)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos,
        past_key_values=_new_cache(),
        use_cache=True,
        logits_to_keep=1,
    )
    gens = generators(prompts) if generators else None
    nxt = pick(out.logits[:, -1, :].float(), gens)
    return _Batch(
        tokens=[[t] for t in nxt.tolist()],
        gens=gens,
        cache=out.past_key_values,
        mask=mask,
        last=nxt,
        pos=pos[:, -1] + 1,
    )


def _step(model: Any, live: _Batch, pick: Picker) -> None:
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
    nxt = pick(out.logits[:, -1, :].float(), live.gens)
    for toks, t in zip(live.tokens, nxt.tolist(), strict=True):
        toks.append(t)
    live.last = nxt
    live.pos = live.pos + 1


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
    return _Batch(
        index=a.index + b.index,
        tokens=a.tokens + b.tokens,
        gens=gens,
        cache=a.cache,
        mask=torch.cat([pad(a.mask, wa, 1), pad(b.mask, wb, 1)], dim=0),
        last=torch.cat([a.last, b.last]),
        pos=torch.cat([a.pos, b.pos]),
    )
