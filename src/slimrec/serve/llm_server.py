"""An OpenAI-compatible chat endpoint over any :class:`Backend` (``slimrec serve-llm``).

Serving the teacher or the student over ``/v1/chat/completions`` lets every OpenAI
client (our own ``openai`` backend included) use a local model unchanged. Concurrent
requests are micro-batched (:mod:`slimrec.serve.batching`) into one padded forward
pass, which is what makes a teacher run through this server fast. Only what a local
model can honour is accepted: ``n=1`` and non-streaming; anything else is a 400 in
OpenAI's error format. If ``SLIMREC_API_KEY`` is set, requests need that bearer token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from slimrec.llm.backends.base import Backend, ChatRequest, LLMError, SamplingConfig
from slimrec.serve.batching import MicroBatcher
from slimrec.serve.guard import RequestGuard

API_KEY_ENV = "SLIMREC_API_KEY"
DEFAULT_MAX_TOKENS = 256


class ChatMessage(BaseModel):
    # Clients send extras (name, tool fields); only role and text content matter here.
    model_config = ConfigDict(extra="ignore")

    role: str = Field(description="system, user or assistant.")
    content: str | list[dict[str, Any]] = Field(description="Text, or a list of text parts.")

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field("answer", description="Name of the schema.")
    schema_: dict[str, Any] = Field(alias="schema", description="The JSON schema.")


class ResponseFormat(BaseModel):
    """OpenAI's ``response_format``: free text, any JSON object, or JSON following a schema."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text", "json_object", "json_schema"] = Field(description="What to return.")
    json_schema: JsonSchemaFormat | None = Field(None, description="For type json_schema.")

    @model_validator(mode="after")
    def _schema_when_asked(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type json_schema needs json_schema.schema")
        return self

    def schema_or_none(self) -> dict[str, Any] | None:
        if self.type == "json_schema" and self.json_schema is not None:
            return self.json_schema.schema_
        return {"type": "object"} if self.type == "json_object" else None


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's chat completion request a local model can honour."""

    # extra="ignore": SDKs add fields (user, logprobs=False, ...) that change nothing here.
    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="Must equal the served model name.")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation.")
    max_tokens: int | None = Field(None, ge=1, description="Cap on generated tokens.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Newer name of the cap.")
    temperature: float = Field(1.0, ge=0, le=2, description="0 = greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    seed: int | None = Field(None, description="Sampling seed.")
    n: int = Field(1, description="Only 1 is supported.")
    stream: bool = Field(False, description="Only false is supported.")
    response_format: ResponseFormat | None = Field(
        None, description="Structured output, where the served backend offers it."
    )

    @field_validator("n")
    @classmethod
    def _one(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only n=1 is supported")
        return v

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, v: bool) -> bool:
        if v:
            raise ValueError("streaming is not supported; send stream=false")
        return v

    def sampling(self) -> SamplingConfig:
        cap = self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS
        schema = self.response_format.schema_or_none() if self.response_format else None
        return SamplingConfig(
            max_new_tokens=cap,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            response_schema=schema,
        )


def error(status: int, message: str, *, type_: str, code: str | None = None, param=None):
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def create_app(
    backend: Backend,
    *,
    model_name: str,
    max_batch: int | None = None,
    batch_wait_s: float = 0.05,
) -> FastAPI:
    """The app serving ``backend`` as ``model_name``; batches up to the backend's batch size.

    ``batch_wait_s``: how long the first request of a batch waits for others. 50 ms is
    noise next to a generation of seconds, and lets 16 concurrent SDK calls (which
    arrive over tens of ms) share one batch; at 10 ms they split, e.g. 1 + 15.
    """
    size = max_batch or int(getattr(backend, "batch_size", 16))
    api_key = os.environ.get(API_KEY_ENV) or None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.batcher = MicroBatcher(backend, max_batch=size, wait_s=batch_wait_s)
        try:
            yield
        finally:
            app.state.batcher.close()

    app = FastAPI(title="slimrec serve-llm", lifespan=lifespan)
    created = int(time.time())

    def error_body(status: int, message: str) -> dict[str, Any]:
        code = "invalid_api_key" if status == 401 else "request_too_large"
        return {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }

    # The key (Bearer only, as OpenAI's) and the body size, before any body is read.
    app.add_middleware(
        RequestGuard,
        key=api_key,
        needs_key=lambda path: path.startswith("/v1/"),
        error_body=error_body,
        accept_x_api_key=False,
    )

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        return error(400, message, type_="invalid_request_error", param=param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail), type_="invalid_request_error")

    def model_card() -> dict[str, Any]:
        return {"id": model_name, "object": "model", "created": created, "owned_by": "slimrec"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": model_name}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str):
        if name != model_name:
            return not_found(name)
        return model_card()

    def not_found(name: str) -> JSONResponse:
        return error(
            404,
            f"model {name!r} not found; this server serves {model_name!r}",
            type_="invalid_request_error",
            code="model_not_found",
            param="model",
        )

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest, request: Request):
        if body.model != model_name:
            return not_found(body.model)
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        job = ChatRequest(key=f"request {uuid.uuid4().hex[:8]}", messages=messages)
        future = request.app.state.batcher.submit(job, body.sampling())
        try:
            done = await asyncio.wrap_future(future)
        except LLMError as e:
            return error(400, e.one_line(), type_="invalid_request_error")
        except Exception as e:
            return error(500, f"generation failed: {type(e).__name__}: {e}", type_="server_error")
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": done.text},
                    "finish_reason": done.finish_reason or "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": done.prompt_tokens,
                "completion_tokens": done.completion_tokens,
                "total_tokens": done.prompt_tokens + done.completion_tokens,
            },
        }

    return app


def serve(
    model: str,
    *,
    adapter: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    batch_size: int = 16,
    threads: int | None = None,
    served_name: str | None = None,
) -> None:
    """Load ``model`` (registry name or folder) with :class:`HFBackend` and serve it."""
    from pathlib import Path

    from slimrec.llm.backends.hf import HFBackend
    from slimrec.serve.listen import bind, bound_port, serve_on

    sock = bind(host, port)  # a port in use fails now, not after loading
    port = bound_port(sock)
    backend = HFBackend(model, adapter=adapter, batch_size=batch_size, threads=threads)
    backend.progress = False  # one bar per micro-batch would flood the log
    backend.check()
    name = served_name or Path(model).name
    app = create_app(backend, model_name=name)
    print(f"serving {backend.model_id} as {name!r} at http://{host}:{port}/v1", flush=True)
    serve_on(app, sock)
