"""Ranking candidate answers of one prompt by their likelihood, soft tokens spliced in.

A method that lists C candidate items in a prompt and asks an LM which comes next (DELRec,
Sun & Zhang 2024; LLaRA; TALLRec) scores each candidate by the log-probability of its
title as the answer. Naively that is C forward passes over the whole prompt. Here the
prompt runs once and only the C short answers run C-wide: a causal LM continues from the
prompt's KV cache (repeated C times), an encoder-decoder (T5) encodes the prompt once and
decodes the C titles as one batch. Both are differentiable, so a soft prompt or an
adapter trains through them (a listwise cross-entropy over the C scores).

A prompt is a list of pieces: plain text (tokenized as text: a title holding
``<|im_end|>`` or ``<extra_id_0>`` stays text) and :class:`Soft` runs, whose input
embeddings are replaced by given vectors (OpenPrompt's soft template, without touching
the tokenizer). An encoder-decoder's answer follows its first sentinel (``<extra_id_0>``)
when the tokenizer has one, as T5 was pre-trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from slimrec.llm.backends.hf import quiet_cache_deprecation
from slimrec.llm.soft_prompt import leading_special_ids, plain_ids

Reduce = Literal["mean", "sum", "first"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "first")


@dataclass(frozen=True)
class Soft:
    """A run of ``n`` positions whose input vectors are given when the prompt is scored."""

    n: int


@dataclass(frozen=True)
class Answer:
    """Where the answer goes: an encoder's first sentinel (T5's ``<extra_id_0>``, as in
    pre-training); nothing for a causal LM, whose answer follows the prompt's end."""


Piece = str | Soft | Answer


@dataclass(frozen=True)
class Prompt:
    """Token ids ``[T]`` of one prompt and the mask ``[T]`` of its soft positions."""

    ids: Tensor
    soft: Tensor


class CandidateLM:
    """``CandidateLM(model, tokenizer)``: scores answers after prompts with soft positions.

    ``model`` is a causal or encoder-decoder Hugging Face LM, possibly wrapped by peft.
    """

    def __init__(self, model: Any, tokenizer: Any):
        self.model = model
        self.tokenizer = tokenizer
        config = model.config
        self.seq2seq = bool(getattr(config, "is_encoder_decoder", False))
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (tokenizer.eos_token_id or 0))
        self.bos = [] if self.seq2seq else leading_special_ids(tokenizer)
        self.eos = [tokenizer.eos_token_id] if self.seq2seq and tokenizer.eos_token_id else []
        self.sentinel: list[int] = []
        if self.seq2seq:
            start = config.decoder_start_token_id
            self.decoder_prefix = [int(start if start is not None else self.pad_id)]
            sentinel = tokenizer.convert_tokens_to_ids("<extra_id_0>")
            self.sentinel = (
                [sentinel]
                if isinstance(sentinel, int) and sentinel != tokenizer.unk_token_id
                else []
            )
            self.decoder_prefix += self.sentinel
        self._ids: dict[str, list[int]] = {}
        quiet_cache_deprecation()  # the KV cache is passed by its (deprecated) name

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ) -> CandidateLM:
        """The LM in folder ``path``, frozen (``requires_grad=False``) and in eval mode."""
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForSeq2SeqLM,
            AutoTokenizer,
        )

        config = AutoConfig.from_pretrained(path, local_files_only=True)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        model = auto.from_pretrained(path, local_files_only=True, dtype=dtype or torch.float32)
        model.requires_grad_(False)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return cls(model.to(device).eval(), tokenizer)

    # -- inputs ------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.embeddings.weight.device

    @property
    def embeddings(self) -> torch.nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def hidden_size(self) -> int:
        return int(self.embeddings.weight.shape[1])

    def text_ids(self, text: str) -> list[int]:
        ids = self._ids.get(text)
        if ids is None:
            ids = self._ids[text] = plain_ids(self.tokenizer, text)
        return ids

    def prompt(self, pieces: Sequence[Piece]) -> Prompt:
        """Token ids and soft mask of ``pieces`` (BOS first, or EOS last for an encoder)."""
        ids, soft = list(self.bos), [False] * len(self.bos)
        for piece in pieces:
            if isinstance(piece, Answer):
                if self.seq2seq:
                    ids += self.sentinel
                    soft += [False] * len(self.sentinel)
            elif isinstance(piece, Soft):
                ids += [self.pad_id] * piece.n
                soft += [True] * piece.n
            else:
                part = self.text_ids(piece)
                ids += part
                soft += [False] * len(part)
        ids += self.eos
        soft += [False] * len(self.eos)
        return Prompt(torch.tensor(ids), torch.tensor(soft))

    def answer_ids(self, text: str) -> list[int]:
        """Token ids of an answer (a causal LM's answer follows the prompt after a space)."""
        ids = self.text_ids(text if self.seq2seq else " " + text)
        return ids or [self.pad_id]

    def input_embeds(self, prompt: Prompt, soft: Tensor | None) -> Tensor:
        """``[1, T, d]`` input embeddings of ``prompt``, its soft positions set to ``soft``."""
        embeds = self.embeddings(prompt.ids[None].to(self.device))
        n_soft = int(prompt.soft.sum())
        if n_soft:
            if soft is None or soft.shape != (n_soft, embeds.shape[-1]):
                got = None if soft is None else tuple(soft.shape)
                raise ValueError(f"{n_soft} soft positions need [{n_soft}, d] vectors, got {got}")
            mask = prompt.soft.to(self.device)[None, :, None]
            embeds = embeds.masked_scatter(mask, soft.to(self.device, embeds.dtype))
        return embeds

    # -- scoring -----------------------------------------------------------------------------

    def scores(
        self,
        prompt: Prompt,
        answers: Sequence[Sequence[int]],
        soft: Tensor | None = None,
        reduce: Reduce = "mean",
    ) -> Tensor:
        """``[C]`` scores of the answers ``answers`` (token ids) after ``prompt``: the mean,
        sum or first of their tokens' log-probabilities (float32, differentiable)."""
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
        embeds = self.input_embeds(prompt, soft)
        width = max(map(len, answers))
        tokens = torch.full((len(answers), width), self.pad_id, dtype=torch.long)
        real = torch.zeros((len(answers), width), dtype=torch.bool)
        for i, ids in enumerate(answers):
            tokens[i, : len(ids)] = torch.tensor(list(ids))
            real[i, : len(ids)] = True
        tokens, real = tokens.to(self.device), real.to(self.device)
        if self.seq2seq:
            logp = self._seq2seq_logp(embeds, tokens, real)
        else:
            logp = self._causal_logp(embeds, tokens, real)
        logp = logp.masked_fill(~real, 0.0)
        if reduce == "first":
            return logp[:, 0]
        total = logp.sum(1)
        return total if reduce == "sum" else total / real.sum(1)

    def _causal_logp(self, embeds: Tensor, tokens: Tensor, real: Tensor) -> Tensor:
        """``[C, L]`` log-probability of each answer token (prompt once, KV cache C-wide)."""
        n, length = tokens.shape
        out = self.model(inputs_embeds=embeds, use_cache=True, logits_to_keep=1)
        first = out.logits[:, -1].float().log_softmax(-1)  # predicts every answer's token 0
        cache = out.past_key_values
        cache.batch_repeat_interleave(n)
        mask = torch.cat(
            [torch.ones((n, embeds.shape[1]), dtype=torch.long, device=self.device), real.long()],
            dim=1,
        )
        rest = self.model(input_ids=tokens, attention_mask=mask, past_key_values=cache).logits
        # Answer position j predicts token j + 1; the last position predicts nothing.
        later = rest[:, :-1].float().log_softmax(-1)
        logp = torch.empty((n, length), device=self.device)
        logp[:, 0] = first[0, tokens[:, 0]]
        if length > 1:
            logp[:, 1:] = later.gather(-1, tokens[:, 1:, None])[..., 0]
        return logp

    def _seq2seq_logp(self, embeds: Tensor, tokens: Tensor, real: Tensor) -> Tensor:
        """``[C, L]`` log-probability of each answer token (encoder once, C decodes)."""
        from transformers.modeling_outputs import BaseModelOutput

        n, length = tokens.shape
        encoded = self.model.get_encoder()(inputs_embeds=embeds).last_hidden_state
        prefix = torch.tensor(self.decoder_prefix, device=self.device).expand(n, -1)
        decoder_ids = torch.cat([prefix, tokens[:, :-1]], dim=1)
        decoder_mask = torch.cat([torch.ones_like(prefix), real[:, :-1].long()], dim=1)
        logits = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoded.expand(n, -1, -1)),
            decoder_input_ids=decoder_ids,
            decoder_attention_mask=decoder_mask,
        ).logits
        # The last prefix position predicts answer token 0.
        start = len(self.decoder_prefix) - 1
        logp = logits[:, start : start + length].float().log_softmax(-1)
        return logp.gather(-1, tokens[..., None])[..., 0]
