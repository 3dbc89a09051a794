"""Local models through transformers: the student, a local teacher, and ``serve-llm``.

Batched generation with our own short decoding loop over the model's KV cache rather
than ``generate()``: it keeps behaviour stable across transformers versions, asks for
the last position's logits only (a 16 x 300 prompt batch would otherwise materialise
GBs of vocabulary logits), and samples each row with its own seeded generator, so a
sampled answer depends on its prompt and seed, not on which requests share its batch.

Decoding itself is :func:`slimrec.llm.decode.decode`: requests are taken longest
prompt first (memory trouble shows at once, groups need little padding), left-padded
with position ids counted from each row's first real token, a finished row leaves the
batch at once and waiting prompts take its place (continuous batching; ``refill=False``
only starts a new group when the batch is empty), the prompts' common opening is run
once and shared by every row (``share_prefix``), and answers are yielded as they
finish. A LoRA adapter folder (peft) is merged into the weights for inference.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from slimrec.errors import ConfigError, SlimrecError
from slimrec.llm.backends.base import ChatRequest, Completion, LLMError, SamplingConfig
from slimrec.machine import set_torch_threads
from slimrec.progress import progress

DTYPES = ("auto", "float32", "bfloat16", "float16")
# transformers 5.x announces, once per process and as a warning at every forward, that the
# `past_key_values` argument our decoder passes goes away in 5.40 (pinned below that in
# pyproject.toml). The user can do nothing about it: keep it out of their log.
DEPRECATION = re.compile(r"past_key_values|cache_params")


class _DropDeprecation(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not DEPRECATION.search(record.getMessage())


def quiet_cache_deprecation() -> None:
    """Silence the `past_key_values` deprecation (warning and log line), nothing else."""
    warnings.filterwarnings("ignore", message=r".*past_key_values.*", category=FutureWarning)
    for handler in logging.getLogger("transformers").handlers:
        if not any(isinstance(f, _DropDeprecation) for f in handler.filters):
            handler.addFilter(_DropDeprecation())


# Chat turn terminators: generation stops at any of these that the vocabulary has, as
# well as at the model's own EOS ids (some GGUF tokenizers name <|endoftext|> as EOS).
TURN_END = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|endoftext|>")


class HFBackend:
    """A causal LM folder or registry name (:func:`slimrec.llm.models.resolve_model`)."""

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        threads: int | None = None,
        progress: bool = True,
        refill: bool = True,
        share_prefix: bool = True,
    ):
        if dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}", where="dtype", fix=f"one of {DTYPES}")
        if batch_size < 1:
            raise ConfigError(f"batch size {batch_size} < 1", where="batch_size", fix="use >= 1")
        self.model_name = str(model)
        self.adapter = str(adapter) if adapter else None
        self.device_name = device
        self.dtype_name = dtype
        self.batch_size = batch_size
        self.threads = threads
        self.progress = progress
        self.refill = refill
        self.share_prefix = share_prefix
        self._model: Any = None
        self._tokenizer: Any = None
        self._model_id: str | None = None

    # -- identity -------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            name = model_identity(self.model_name)
            if self.adapter:
                name += f"+lora@{weights_hash(Path(self.adapter))}"
            self._model_id = f"hf:{name}"
        return self._model_id

    # -- loading --------------------------------------------------------------------

    def check(self) -> None:
        self._load()

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quiet_cache_deprecation()  # transformers' logger exists (and has its handler) now

        from slimrec.llm.models import resolve_model

        set_torch_threads(self.threads)
        device = self._device(torch)
        dtype = self._dtype(torch, device)
        what = self.model_name + (f" with adapter {self.adapter}" if self.adapter else "")
        try:
            folder = resolve_model(self.model_name)
            tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype)
            if self.adapter:
                from peft import PeftModel

                if not (Path(self.adapter) / "adapter_config.json").is_file():
                    raise LLMError("no adapter_config.json", where=self.adapter)
                model = PeftModel.from_pretrained(model, self.adapter, is_trainable=False)
                model = model.merge_and_unload()
            model_id = self.model_id
        except SlimrecError as e:
            raise LLMError(f"cannot load {what}: {e.one_line()}") from e
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise LLMError(
                f"cannot load {what}: {type(e).__name__}: {e}",
                fix="give a registry name or a Hugging Face model folder (and a peft LoRA folder)",
            ) from e
        if not tok.chat_template:
            raise LLMError(f"the tokenizer of {what} has no chat template", where=folder)
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self._stop_ids = _stop_ids(tok, model)
        if not self._stop_ids:
            raise LLMError(f"{what} defines no end-of-sequence token", where=folder)
        self._limit = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        self._device_obj = device
        self._model = model.to(device).eval()
        self._tokenizer = tok
        self._model_id = model_id

    def _device(self, torch: Any) -> Any:
        from slimrec.devices import pick_device

        return pick_device(self.device_name)

    def _dtype(self, torch: Any, device: Any) -> Any:
        if self.dtype_name != "auto":
            return getattr(torch, self.dtype_name)
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32  # CPUs without bf16 units run float32 several times faster

    # -- generation -----------------------------------------------------------------

    def encode(self, request: ChatRequest) -> list[int]:
        """The prompt's token ids: chat template with the assistant turn opened, its
        messages' text read as plain text (a client cannot forge a turn marker)."""
        from slimrec.llm.chat import chat_prompt_ids

        self._load()
        try:
            return chat_prompt_ids(self._tokenizer, request.messages)
        except Exception as e:  # jinja errors: bad roles, missing fields
            raise LLMError(f"chat template failed: {e}", where=request.key) from e

    def generate(
        self, requests: Sequence[ChatRequest], sampling: SamplingConfig
    ) -> Iterator[tuple[int, Completion]]:
        if sampling.response_schema is not None:
            raise LLMError(
                "a response schema (structured output) is not offered by the hf backend",
                fix="use backend: llamacpp, or an OpenAI-compatible endpoint that has it "
                "(vLLM, llama.cpp's server); or turn structured output off",
            )
        self._load()
        prompts = [self.encode(r) for r in requests]
        for r, ids in zip(requests, prompts, strict=True):
            if self._limit and len(ids) + sampling.max_new_tokens > self._limit:
                raise LLMError(
                    f"prompt of {len(ids)} tokens + {sampling.max_new_tokens} new tokens exceeds "
                    f"the model's context of {self._limit}",
                    where=r.key,
                    fix="shorten the prompt (fewer history items) or lower max_new_tokens",
                )
        bar = progress(total=len(requests), desc="generate", unit="req", shown=self.progress)
        with bar:
            for i, tokens, finished in self._rows(prompts, sampling):
                text = self._tokenizer.decode(
                    [t for t in tokens if t not in self._stop_ids], skip_special_tokens=True
                )
                bar.update()
                yield (
                    i,
                    Completion(
                        text=text,
                        model=self.model_id,
                        prompt_tokens=len(prompts[i]),
                        completion_tokens=len(tokens),
                        finish_reason="stop" if finished else "length",
                    ),
                )

    def _rows(
        self, prompts: Sequence[Sequence[int]], sampling: SamplingConfig
    ) -> Iterator[tuple[int, list[int], bool]]:
        """``(index, new tokens with the stop token, ended by a stop)`` as rows finish."""
        from slimrec.llm.decode import decode

        sampled = sampling.temperature > 0
        allow = None
        if sampling.response_pattern is not None:
            from slimrec.llm.constrain import tokenizer_filter

            allow = tokenizer_filter(sampling.response_pattern, self._tokenizer, self._stop_ids)
        return decode(
            self._model,
            prompts,
            max_new_tokens=sampling.max_new_tokens,
            stop_ids=self._stop_ids,
            pad_id=self._tokenizer.pad_token_id,
            pick=lambda logits, gens: _pick(logits, sampling, gens),
            generators=(lambda group: _generators(group, sampling)) if sampled else None,
            batch_size=self.batch_size,
            refill=self.refill,
            share_prefix=self.share_prefix,
            no_repeat_ngram=sampling.no_repeat_ngram,
            allow=allow,
        )

    def _decode(
        self, prompts: list[list[int]], sampling: SamplingConfig
    ) -> list[tuple[list[int], bool]]:
        """Per prompt, in order: its new tokens (EOS included) and whether it ended."""
        self._load()
        results: list[tuple[list[int], bool]] = [([], False)] * len(prompts)
        for i, tokens, finished in self._rows(prompts, sampling):
            results[i] = (tokens, finished)
        return results


def _pick(logits: Any, sampling: SamplingConfig, gens: list[Any] | None) -> Any:
    """Greedy when temperature is 0, else temperature + top-p sampling per row."""
    import torch

    if gens is None:
        return logits.argmax(-1)
    probs = torch.softmax(logits / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        sorted_p, idx = probs.sort(dim=-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the top token always stays).
        drop = sorted_p.cumsum(-1) - sorted_p >= sampling.top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, idx, sorted_p)
    picks = [torch.multinomial(probs[r].cpu(), 1, generator=g) for r, g in enumerate(gens)]
    return torch.cat(picks).to(logits.device)


def _generators(prompts: list[list[int]], sampling: SamplingConfig) -> list[Any]:
    """One CPU generator per row, seeded by the seed and the prompt (not the batch)."""
    import torch

    gens = []
    for p in prompts:
        g = torch.Generator()
        if sampling.seed is None:
            g.seed()
        else:
            digest = hashlib.sha256(repr((sampling.seed, p)).encode()).digest()
            g.manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
        gens.append(g)
    return gens


def _stop_ids(tok: Any, model: Any) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        eos = getattr(source, "eos_token_id", None)
        ids.update([eos] if isinstance(eos, int) else (eos or []))
    if tok.eos_token_id is not None:
        ids.add(tok.eos_token_id)
    vocab = tok.get_vocab()
    ids.update(vocab[t] for t in TURN_END if t in vocab)
    return ids


def model_identity(name: str) -> str:
    """What identifies a model in cache keys: a shipped name as is, a folder as its name
    and a fingerprint of its weights, a Hub id as itself and that fingerprint."""
    from slimrec.hub import hub_folder, is_hub_id
    from slimrec.llm.models import MODELS

    if name in MODELS:
        return name
    if is_hub_id(name):
        return f"{name.split('@')[0]}@{weights_hash(hub_folder(name))}"
    return f"{Path(name).name}@{weights_hash(Path(name))}"


def weights_hash(folder: Path) -> str:
    """Short sha256 over a model or adapter folder's weight files and config."""
    files = sorted(
        p
        for p in folder.glob("*")
        if p.suffix in {".safetensors", ".bin"} or p.name in {"config.json", "adapter_config.json"}
    )
    if not files:
        raise LLMError("no weights found", where=folder, fix="give a saved model/adapter folder")
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode())
        with p.open("rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]
