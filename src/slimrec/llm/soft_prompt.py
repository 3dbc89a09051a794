"""A frozen causal LM that reads prompts with vectors spliced in: soft tokens in, hidden
states out.

Methods that put learned or projected vectors into an LLM's input (LLM-SRec's item and
read-out tokens, DELRec's soft prompts) all need the same thing: a prompt made of text
*segments* and *slots*, the slots' input embeddings replaced by given vectors, and the
last-layer hidden states at chosen slots. This module does it without touching the
tokenizer: text is tokenized as plain text (``split_special_tokens``: a title holding
``<|im_end|>`` or ``[UserOut]`` stays text), slot positions get a placeholder id whose
embedding is overwritten with ``masked_scatter`` (differentiable, so gradients flow
through the frozen model into the slot vectors), prompts are right-padded with an
attention mask, and only the decoder runs (never the LM head's vocabulary-wide logits).

The LM's weights are frozen (``requires_grad=False``, eval mode) and are held outside any
``nn.Module`` tree of a method, so they are never saved with it or handed to an
optimiser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from slimrec.errors import ConfigError


def plain_ids(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` as plain text: a title holding ``<|im_end|>`` stays text."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def leading_special_ids(tokenizer) -> list[int]:
    """The ids the tokenizer puts before any text (a BOS token; none for Qwen/SmolLM2)."""
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    return ids[: len(ids) - len(plain)] if ids[-len(plain) :] == plain else []


@dataclass(frozen=True)
class Slot:
    """A position whose input vector is given; ``read`` marks a read-out position."""

    read: bool = False


Segment = str | Slot


@dataclass
class Batch:
    """Right-padded ``input_ids``/``attention_mask`` ``[B, T]``, ``slots`` (bool ``[B, T]``,
    row-major order = the order of the slot vectors) and ``reads`` ``[B]`` (the read-out
    position of each prompt)."""

    input_ids: Tensor
    attention_mask: Tensor
    slots: Tensor
    reads: Tensor


class FrozenLM:
    """``FrozenLM(path)``: the decoder of a causal LM and its tokenizer, frozen."""

    def __init__(self, path: str | Path, *, device: str | torch.device = "cpu", dtype=None):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        config = AutoConfig.from_pretrained(path, local_files_only=True)
        if getattr(config, "is_encoder_decoder", False):
            raise ConfigError(
                f"{config.model_type} is an encoder-decoder model",
                where=path,
                fix="use a causal (decoder-only) LM, e.g. smollm2-135m or a Qwen/Llama folder",
            )
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, dtype=dtype or torch.float32
        )
        model.requires_grad_(False)
        self.decoder = model.get_decoder().to(device).eval()
        self.embeddings = model.get_input_embeddings().to(device)
        self.hidden_size = int(config.hidden_size)
        self.device = torch.device(device)
        self.dtype = self.embeddings.weight.dtype
        self.bos = leading_special_ids(self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.tokenizer.eos_token_id or 0))
        self._ids: dict[str, list[int]] = {}

    def embedding_stats(self) -> tuple[float, float]:
        """Mean and std of the token-embedding matrix (to initialise soft tokens alike)."""
        w = self.embeddings.weight.float()
        return float(w.mean()), float(w.std())

    def text_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` as plain text (cached; special-token strings stay text)."""
        ids = self._ids.get(text)
        if ids is None:
            ids = self._ids[text] = plain_ids(self.tokenizer, text)
        return ids

    def batch(self, prompts: Sequence[Sequence[Segment]]) -> Batch:
        """Token ids of ``prompts`` with slot positions marked (one read-out per prompt)."""
        rows, slot_rows, reads = [], [], []
        for prompt in prompts:
            ids, slots, read = list(self.bos), [False] * len(self.bos), None
            for segment in prompt:
                if isinstance(segment, Slot):
                    if segment.read:
                        read = len(ids)
                    ids.append(self.pad_id)
                    slots.append(True)
                else:
                    piece = self.text_ids(segment)
                    ids += piece
                    slots += [False] * len(piece)
            if read is None:
                raise ValueError("a prompt needs one read-out slot")
            rows.append(ids)
            slot_rows.append(slots)
            reads.append(read)
        width = max(map(len, rows))
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        slots = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, (ids, marks) in enumerate(zip(rows, slot_rows, strict=True)):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(ids)] = 1
            slots[i, : len(ids)] = torch.tensor(marks)
        return Batch(input_ids, mask, slots, torch.tensor(reads))

    def prompt_length(self, prompt: Sequence[Segment]) -> int:
        """Tokens of ``prompt`` as :meth:`batch` lays it out (a slot is one)."""
        return len(self.bos) + sum(
            1 if isinstance(segment, Slot) else len(self.text_ids(segment)) for segment in prompt
        )

    def read_many(
        self, prompts: Sequence[Sequence[Segment]], slot_vectors: Sequence[Tensor], chunk: int
    ) -> Tensor:
        """:meth:`read` of many prompts, ``chunk`` at a time, ``[len(prompts), hidden]`` in
        their order; ``slot_vectors[i]`` fills prompt ``i``'s slots.

        Prompts of similar length go together: padding to a chunk's longest prompt is
        computation, and one forward over hundreds of long prompts is slower per prompt
        than several small ones (docs/benchmarks.md, "LLM-SRec").
        """
        if len(prompts) != len(slot_vectors):
            raise ValueError(f"{len(slot_vectors)} slot vector sets for {len(prompts)} prompts")
        if not prompts:
            return torch.empty(0, self.hidden_size, device=self.device)
        order = sorted(range(len(prompts)), key=lambda i: self.prompt_length(prompts[i]))
        states = [
            self.read(
                self.batch([prompts[i] for i in group]),
                torch.cat([slot_vectors[i] for i in group]),
            )
            for group in (order[start : start + chunk] for start in range(0, len(order), chunk))
        ]
        back = torch.tensor(order).argsort()  # row j of the sorted states is prompt order[j]
        return torch.cat(states)[back.to(states[0].device)]

    def read(self, batch: Batch, slot_vectors: Tensor) -> Tensor:
        """Last hidden states ``[B, hidden]`` at the read-out slots, the slots' inputs
        replaced by ``slot_vectors`` ``[n_slots, hidden]`` (row-major slot order)."""
        device = self.device
        input_ids = batch.input_ids.to(device)
        slots = batch.slots.to(device)
        if slot_vectors.shape != (int(slots.sum()), self.hidden_size):
            raise ValueError(
                f"{tuple(slot_vectors.shape)} slot vectors for {int(slots.sum())} slots "
                f"of width {self.hidden_size}"
            )
        embeds = self.embeddings(input_ids)
        embeds = embeds.masked_scatter(slots[..., None], slot_vectors.to(device, embeds.dtype))
        hidden = self.decoder(
            inputs_embeds=embeds, attention_mask=batch.attention_mask.to(device), use_cache=False
        ).last_hidden_state
        rows = torch.arange(len(input_ids), device=device)
        return hidden[rows, batch.reads.to(device)].float()
