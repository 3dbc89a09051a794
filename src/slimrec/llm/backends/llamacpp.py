"""Local GGUF models through llama.cpp: natively quantised weights, continuous batching.

The shipped models are 4-bit GGUF files; the ``hf`` backend de-quantises them to fp32 for
transformers. llama.cpp runs them as they are (``xllamacpp``, a prebuilt wheel that embeds
llama.cpp's own server in-process: thread-safe, ``parallel`` slots decoded together), so a
larger teacher fits the same CPU budget (../shared/notes/models.md: Qwen2.5-Coder-1.5B at
15 tok/s, where transformers runs the 0.5B at 5.6). Requests go to its OpenAI-style
``handle_chat_completions`` from a pool of ``parallel`` threads; answers are yielded as
they finish. JSON-schema constrained output is available through the same call.
llama.cpp renders the chat template and parses the special tokens of the rendered prompt,
so every control token of the GGUF's vocabulary is broken up inside message text first
(:func:`slimrec.llm.chat.plain_messages`): a title that spells a turn marker stays text.

Models: a shipped name (its GGUF assembled once from the pinned wheels into
``$SLIMREC_CACHE/models/<name>.gguf``) or a path to a ``.gguf`` file. The model id in
cache keys names the engine, so answers of different engines are never mixed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from slimrec.errors import ConfigError
from slimrec.io import cache_dir, sha256_file
from slimrec.llm.backends.base import (
    ChatRequest,
    Completion,
    LLMError,
    SamplingConfig,
    only_local_decoding,
    response_format,
)
from slimrec.llm.chat import plain_messages
from slimrec.machine import default_threads


def reads_as_shipped(model: str) -> bool:
    """llama.cpp is installed and ``model`` is a GGUF it can read: a shipped name or a
    ``.gguf`` file (a transformers folder or a Hub id is not)."""
    import importlib.util

    from slimrec.llm.models import MODELS

    if importlib.util.find_spec("xllamacpp") is None:
        return False
    return model in MODELS or (Path(model).suffix == ".gguf" and Path(model).is_file())


def gguf_file(model: str, *, cache: Path | None = None) -> tuple[Path, str]:
    """``(GGUF path, its name in model ids)`` for a shipped name or a ``.gguf`` file."""
    from slimrec.llm.models import MODELS, assemble_gguf

    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path, f"{path.name}@{sha256_file(path)[:12]}"
    if model in MODELS:
        spec = MODELS[model]
        out = (cache or cache_dir()) / "models" / f"{model}.gguf"
        if not out.is_file():  # only a verified file is ever renamed into place
            out.parent.mkdir(parents=True, exist_ok=True)
            part = out.with_name(f"{out.name}.{os.getpid()}.part")
            assemble_gguf(spec, part, cache=cache)  # checks the sha256, else deletes it
            os.replace(part, out)
        return out, model
    raise ConfigError(
        f"llama.cpp reads GGUF files: {model!r} is neither a shipped model nor a .gguf file",
        fix=f"use one of {sorted(MODELS)} or a path to a .gguf file (or backend: hf)",
    )


def gguf_special_tokens(path: Path) -> list[str]:
    """The spellings llama.cpp parses as special tokens in a prompt (its vocabulary's
    control and unknown tokens), longest first."""
    stat = path.stat()  # read once per file version: a large vocabulary takes seconds
    return list(_special_tokens(str(path.resolve()), stat.st_size, stat.st_mtime_ns))


@functools.cache
def _special_tokens(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    import gguf

    fields = gguf.GGUFReader(path).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()
    special = (gguf.TokenType.CONTROL, gguf.TokenType.UNKNOWN)
    found = {t for t, k in zip(tokens, types, strict=True) if k in special and t.strip()}
    return tuple(sorted(found, key=len, reverse=True))


class LlamaCppBackend:
    """``generate`` over llama.cpp's in-process server (see the module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        parallel: int = 8,
        threads: int | None = None,
        context_per_slot: int = 2048,
        gpu_layers: int = 0,
        verbosity: int = 1,
    ):
        self.model_name = model
        self.adapter = adapter
        self.parallel = parallel
        self.threads = threads  # None: the cores other work leaves free, at most 8
        self.context_per_slot = context_per_slot
        self.gpu_layers = gpu_layers
        # llama.cpp logs every slot's timings to stderr (its default, 3), thousands of
        # lines per run that bury the progress bar; 1 keeps its errors (a bad file).
        self.verbosity = verbosity
        self._server: Any = None
        self._path: Path | None = None
        self._model_id: str | None = None
        self._specials: list[str] = []  # the GGUF's, read when the server starts

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            self._path, name = gguf_file(self.model_name)
            self._model_id = f"llamacpp:{name}"
            if self.adapter:  # the adapter's weights name the answers, as for hf
                from slimrec.llm.backends.hf import weights_hash

                self._model_id += f"+lora@{weights_hash(Path(self.adapter))}"
        return self._model_id

    def check(self) -> None:
        try:
            import xllamacpp  # noqa: F401
        except ImportError as e:
            raise LLMError(
                "the llamacpp backend needs the xllamacpp package",
                fix="pip install 'slimrec[llamacpp]' (a prebuilt wheel), or use backend: hf",
            ) from e
        self.model_id  # noqa: B018  (resolves the GGUF: fails here, not mid-run)

    def _start(self) -> Any:
        if self._server is None:
            import xllamacpp

            self.check()
            params = xllamacpp.CommonParams()
            params.model.path = str(self._path)
            if self.adapter:  # applied at run time on the quantised base (gguf_lora)
                from slimrec.llm.gguf_lora import lora_gguf

                lora = lora_gguf(self.adapter, self._path)
                params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(str(lora), 1.0)]
            params.n_parallel = self.parallel
            params.n_ctx = self.parallel * self.context_per_slot
            params.n_gpu_layers = self.gpu_layers
            n_threads = self.threads or min(default_threads(), 8)
            params.cpuparams.n_threads = n_threads
            params.cpuparams_batch.n_threads = n_threads
            params.verbosity = self.verbosity
            self._specials = gguf_special_tokens(self._path)
            self._server = xllamacpp.Server(params)
        return self._server

    def generate(
        self, requests: Sequence[ChatRequest], sampling: SamplingConfig
    ) -> Iterator[tuple[int, Completion]]:
        only_local_decoding(sampling, "llamacpp")
        server = self._start()
        body = {"max_tokens": sampling.max_new_tokens, "temperature": sampling.temperature}
        body |= {"top_p": sampling.top_p}
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.response_schema is not None:  # compiled to a grammar by llama.cpp
            body["response_format"] = response_format(sampling.response_schema)

        def ask(request: ChatRequest) -> dict:
            messages = plain_messages(request.messages, self._specials)
            return server.handle_chat_completions({"messages": messages, **body})

        pool = ThreadPoolExecutor(self.parallel)
        try:
            futures = {pool.submit(ask, r): i for i, r in enumerate(requests)}
            for future in as_completed(futures):
                index = futures[future]
                yield index, self._completion(requests[index], future.result())
        finally:  # a failure, an interrupt or a caller that stops: run no queued request
            pool.shutdown(wait=True, cancel_futures=True)

    def _completion(self, request: ChatRequest, reply: dict) -> Completion:
        if "error" in reply or not reply.get("choices"):
            detail = str(reply.get("error", reply))[:200]
            raise LLMError(f"{request.key}: llama.cpp failed: {detail}", where=self.model_id)
        choice, usage = reply["choices"][0], reply.get("usage", {})
        return Completion(
            text=choice["message"].get("content") or "",
            model=self.model_id,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
        )

    def close(self) -> None:
        self._server = None  # the server's destructor stops its loop and frees the model
