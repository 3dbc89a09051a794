"""Backend settings and the registry of backends that can answer them.

``BackendConfig`` is the one YAML-able description of "which LLM answers, and how": the
backend (``openai`` for any OpenAI-compatible endpoint, ``hf`` for a local model), the
model, the endpoint's limits and prices, and the sampling settings. A method adds its
own prompt settings (SLIM's teacher: :class:`slimrec.methods.slim.teach.BackendConfig`).
``build_backend`` turns it into a :class:`Backend`; the local backend is imported only
when chosen, so remote models never load torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from slimrec.llm.backends.base import (
    Backend,
    ChatRequest,
    Completion,
    LLMError,
    Message,
    SamplingConfig,
    redact_url,
)
from slimrec.machine import THREADS

DEFAULT_TEACHER = "qwen2.5-coder-0.5b"


def _teacher_sampling() -> SamplingConfig:
    # Three steps with five categories of five items each need more than the default.
    return SamplingConfig(max_new_tokens=512)


class BackendConfig(BaseModel):
    """Which LLM answers, and how it is reached and sampled."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["auto", "openai", "hf", "llamacpp", "vllm"] = Field(
        "hf",
        description="openai: any OpenAI-compatible endpoint; hf: a local model through "
        "transformers; llamacpp: a shipped model or .gguf file through llama.cpp "
        "(pip install 'slimrec[llamacpp]'); vllm: a local model through a vLLM server "
        "slimrec starts (its own environment: scripts/vllm-env.sh); auto: the fastest of "
        "these installed here for the model and device (resolve_backend).",
    )
    model: str = Field(
        DEFAULT_TEACHER,
        description="Model name at the endpoint (openai), or a shipped model name or a "
        "local folder (hf).",
    )
    base_url: str | None = Field(
        None,
        description="Endpoint of the openai backend, e.g. http://127.0.0.1:8000/v1; "
        "default $OPENAI_BASE_URL, else https://api.openai.com/v1.",
    )

    @field_serializer("base_url")
    def _without_credentials(self, url: str | None) -> str | None:
        # Dumps feed config.yaml, stage manifests and cache keys: no password or key in them.
        return redact_url(url)

    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="Name of the environment variable holding the API key (never the key "
        "itself); local endpoints work without one.",
    )
    concurrency: int = Field(8, ge=1, description="Requests in flight at once (openai).")
    timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for one answer.")
    max_retries: int = Field(
        5, ge=0, description="Retries of a request on 429, 5xx, timeouts, bad bodies."
    )
    backoff_base_s: float = Field(
        1.0, ge=0, description="First retry delay; doubles each retry (with jitter)."
    )
    backoff_max_s: float = Field(60.0, ge=0, description="Cap on one retry delay.")
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = Field(
        "max_tokens",
        description="Request field carrying the token cap; newer OpenAI reasoning models "
        "want max_completion_tokens.",
    )
    price_prompt_per_mtok: float | None = Field(
        None, ge=0, description="Price per 1M prompt tokens, for the cost estimate."
    )
    price_completion_per_mtok: float | None = Field(
        None, ge=0, description="Price per 1M completion tokens, for the cost estimate."
    )
    batch_size: int = Field(
        16,
        ge=1,
        description="Prompts per forward pass (hf); parallel slots (llamacpp); requests in "
        "flight (vllm).",
    )
    device: str = Field("auto", description="auto|cpu|cuda (hf).")
    dtype: str = Field("auto", description="auto|float32|bfloat16|float16 (hf).")
    threads: int | None = Field(
        None,
        ge=1,
        description=THREADS + " vllm on a CPU: the cores its workers are bound to (unset: "
        "vLLM's own choice, which keeps one core for its scheduler).",
    )
    sampling: SamplingConfig = Field(
        default_factory=_teacher_sampling, description="Decoding settings (part of cache keys)."
    )


class EndpointConfig(BaseModel):
    """An OpenAI-compatible endpoint serving one model (vLLM, llama.cpp's server, Ollama,
    ``slimrec serve-llm``): for a model that runs elsewhere, e.g. the student on GPUs."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="e.g. http://127.0.0.1:8000/v1")
    model: str = Field(
        description="The served model's name; it names the answers in caches, so serve "
        "different weights (a new adapter) under a new name."
    )

    @field_serializer("base_url")
    def _without_credentials(self, url: str) -> str | None:
        return redact_url(url)

    api_key_env: str = Field(
        "SLIMREC_ENDPOINT_API_KEY",
        description="Environment variable holding the key (never the key); not "
        "OPENAI_API_KEY by default, so that key never goes to an endpoint of your own.",
    )
    concurrency: int = Field(16, ge=1, description="Requests in flight at once.")
    timeout_s: float = Field(300.0, gt=0, description="Seconds to wait for one answer.")
    max_retries: int = Field(5, ge=0, description="Retries on 429, 5xx and timeouts.")

    def build(self) -> Backend:
        return _openai(self)


def _openai(config: BackendConfig | EndpointConfig, **more: Any) -> Backend:
    """The openai backend on what an endpoint config and a backend config share."""
    from slimrec.llm.backends.openai_backend import OpenAIBackend

    return OpenAIBackend(
        config.model,
        base_url=config.base_url,
        api_key_env=config.api_key_env,
        concurrency=config.concurrency,
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        **more,
    )


def _build_openai(config: BackendConfig) -> Backend:
    return _openai(
        config,
        backoff_base_s=config.backoff_base_s,
        backoff_max_s=config.backoff_max_s,
        max_tokens_field=config.max_tokens_field,
    )


def _build_hf(config: BackendConfig) -> Backend:
    from slimrec.llm.backends.hf import HFBackend  # torch + transformers: only when chosen

    return HFBackend(
        config.model,
        device=config.device,
        dtype=config.dtype,
        batch_size=config.batch_size,
        threads=config.threads,
        progress=False,  # `slimrec teach` shows one bar of answers; a second would repeat it
    )


def _build_llamacpp(config: BackendConfig) -> Backend:
    from slimrec.llm.backends.llamacpp import LlamaCppBackend

    gpu_layers = 999 if config.device.startswith("cuda") else 0
    return LlamaCppBackend(
        config.model, parallel=config.batch_size, threads=config.threads, gpu_layers=gpu_layers
    )


def _build_vllm(config: BackendConfig) -> Backend:
    from slimrec.llm.backends.vllm import VLLMBackend

    return VLLMBackend(
        config.model, dtype=config.dtype, concurrency=config.batch_size, threads=config.threads
    )


BACKENDS: dict[str, Callable[[BackendConfig], Backend]] = {
    "openai": _build_openai,
    "hf": _build_hf,
    "llamacpp": _build_llamacpp,
    "vllm": _build_vllm,
}


# Answers in flight from which vLLM's CPU build outran llama.cpp, as measured: the 1.5B
# teacher 2.4-3.6x at 32 (docs/benchmarks.md, "The teacher through vLLM"); one prompt at
# a time llama.cpp was faster ("The student through vLLM").
VLLM_CPU_MIN_IN_FLIGHT = 32


def resolve_backend(config: BackendConfig) -> str:
    """The backend that answers ``config``: its ``backend``, or for ``auto`` the fastest
    engine installed here, as measured (docs/benchmarks.md, "Engines"): an endpoint
    (``base_url`` given) is openai; on a GPU, vLLM where its environment is set up; on the
    CPU, vLLM in bf16 for at least ``VLLM_CPU_MIN_IN_FLIGHT`` answers in flight where the
    CPU multiplies bf16 natively and vLLM is set up (its ``auto`` dtype is bf16 on x86),
    else llama.cpp for a model it reads as it is shipped (GGUF, 2-5x transformers'
    de-quantised fp32); else hf, which runs everything."""
    if config.backend != "auto":
        return config.backend
    if config.base_url:
        return "openai"
    from slimrec.devices import pick_device
    from slimrec.llm.backends.vllm import vllm_version

    if pick_device(config.device).type == "cuda":
        return "vllm" if vllm_version() else "hf"
    from slimrec.machine import native_bf16

    batched = config.batch_size >= VLLM_CPU_MIN_IN_FLIGHT and config.dtype in ("auto", "bfloat16")
    if batched and native_bf16() and vllm_version():
        return "vllm"
    from slimrec.llm.backends.llamacpp import reads_as_shipped

    return "llamacpp" if reads_as_shipped(config.model) else "hf"


def engine_version(engine: str) -> str | None:
    """The installed version of what runs ``engine`` here, for stage manifests (None for
    an endpoint, whose server is not ours to ask)."""
    if engine == "vllm":
        from slimrec.llm.backends.vllm import vllm_version

        return vllm_version()
    package = {"hf": "transformers", "llamacpp": "xllamacpp"}.get(engine)
    if package is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def build_backend(config: BackendConfig, engine: str | None = None) -> Backend:
    """The backend ``config`` describes (not yet checked: call its ``check()``); ``engine``
    is ``resolve_backend(config)`` where the caller has it already (auto probes engines)."""
    return BACKENDS[engine or resolve_backend(config)](config)


__all__ = [
    "BACKENDS",
    "DEFAULT_TEACHER",
    "Backend",
    "BackendConfig",
    "ChatRequest",
    "Completion",
    "EndpointConfig",
    "LLMError",
    "Message",
    "SamplingConfig",
    "build_backend",
    "engine_version",
    "resolve_backend",
]
