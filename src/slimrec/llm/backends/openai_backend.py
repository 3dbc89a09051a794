"""Teacher answers from any OpenAI-compatible chat endpoint, concurrently and with retries.

The official ``openai`` SDK (``AsyncOpenAI``) talks to OpenAI, vLLM, llama.cpp, Ollama or
our own ``slimrec serve-llm``. The SDK's own retries are off: the policy is ours, so it
is the same everywhere and testable -- exponential backoff with jitter on 429 (honouring
``Retry-After``), 5xx, timeouts, lost connections and unparseable bodies; any other 4xx
fails at once, since asking again cannot help. Answers are yielded as they arrive so the
caller can cache each one immediately; the first request that fails for good stops the
run with an :class:`LLMError` naming it, after everything already answered was yielded.

The API key is read from the environment variable named in the settings, only when a
request is made, and never logged or written anywhere.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
from collections.abc import Iterator, Sequence
from urllib.parse import urlparse

import openai

from slimrec.llm.backends.base import (
    ChatRequest,
    Completion,
    LLMError,
    SamplingConfig,
    only_local_decoding,
    redact_url,
    response_format,
)
from slimrec.llm.sanitize import sanitize

log = logging.getLogger(__name__)

OPENAI_URL = "https://api.openai.com/v1"
LOCAL_KEY = "sk-no-key-needed"  # local servers ignore the key but the SDK wants one
MAX_RETRY_AFTER_S = 120.0  # a server asking for longer is treated as down
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


class _Retryable(Exception):
    """A failure worth asking again; ``wait_s`` is the server's Retry-After, if any."""

    def __init__(self, cause: str, wait_s: float | None = None):
        super().__init__(cause)
        self.wait_s = wait_s


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible endpoint (see module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_tokens_field: str = "max_tokens",
    ):
        self.model = model
        # As the OpenAI SDK does: an unset base URL comes from $OPENAI_BASE_URL.
        self._real_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        self.base_url = redact_url(self._real_url)  # what logs and errors show
        self.api_key_env = api_key_env
        self._key = api_key  # given by a caller that made it (a server it started); else env
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_tokens_field = max_tokens_field
        self.retries = 0  # retried attempts over this backend's life (for the summary)
        if urlparse(self.base_url).scheme not in ("http", "https"):
            raise LLMError(
                f"base URL {self.base_url!r} is not an http(s) URL",
                fix="e.g. --base-url http://127.0.0.1:8000/v1",
            )

    @property
    def model_id(self) -> str:
        # The served name alone: a restarted server (new port, a proxy) keeps its cache.
        # Two endpoints serving different weights under one name would share answers.
        return self.model

    # -- set-up -----------------------------------------------------------------------

    def _api_key(self) -> str:
        key = self._key or os.environ.get(self.api_key_env)
        if key:
            return key
        if urlparse(self.base_url).hostname in LOCAL_HOSTS:
            return LOCAL_KEY
        raise LLMError(
            f"no API key: environment variable {self.api_key_env} is not set",
            where=self.base_url,
            fix=f"export {self.api_key_env}=... (or set api_key_env to the variable you use)",
        )

    def _client_args(self) -> dict:
        return {
            "api_key": self._api_key(),
            "base_url": self._real_url,
            "max_retries": 0,  # retries are ours
            "timeout": self.timeout_s,
        }

    def check(self) -> None:
        """One ``GET /models``: an endpoint that is not there fails here, at once."""
        client = openai.OpenAI(**(self._client_args() | {"timeout": min(self.timeout_s, 30.0)}))
        try:
            served = [str(m.id) for m in client.models.list().data]
        except (TypeError, AttributeError, ValueError):  # 200 but no model list in it
            log.info("%s/models answered without a model list; going on", self.base_url)
            return
        except openai.APIStatusError as e:
            if e.status_code in (401, 403):
                raise LLMError(
                    f"the endpoint refused the API key ({e.status_code})",
                    where=self.base_url,
                    fix=f"check the key in ${self.api_key_env}",
                ) from None
            # Some servers do not list models; the first chat request will tell.
            log.info("%s/models answered %s; going on", self.base_url, e.status_code)
            return
        except openai.APIConnectionError as e:  # includes timeouts
            cause = "no answer in time" if isinstance(e, openai.APITimeoutError) else "unreachable"
            raise LLMError(
                f"endpoint {cause} ({_root_cause(e)})",
                where=self.base_url,
                fix="start the server or correct --base-url",
            ) from None
        finally:
            client.close()
        if served and self.model not in served:
            log.warning(
                "model %r is not among those listed at %s: %s",
                self.model,
                self.base_url,
                ", ".join(served[:10]),
            )

    # -- generation -------------------------------------------------------------------

    def generate(
        self, requests: Sequence[ChatRequest], sampling: SamplingConfig
    ) -> Iterator[tuple[int, Completion]]:
        """Yield ``(index, completion)`` in arrival order; raise on the first failure for good.

        The event loop is driven from this generator, so answers reach the caller in its
        own thread (and Ctrl-C lands there too); pending requests are cancelled when the
        generator stops early.
        """
        if not requests:
            return
        only_local_decoding(sampling, "openai")
        loop = asyncio.new_event_loop()
        client = openai.AsyncOpenAI(**self._client_args())
        semaphore = asyncio.Semaphore(self.concurrency)
        pending: set[asyncio.Task] = set()
        try:
            pending = {
                loop.create_task(self._one(client, semaphore, i, r, sampling))
                for i, r in enumerate(requests)
            }
            while pending:
                done, pending = loop.run_until_complete(
                    asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                )
                failures = [t.exception() for t in done if t.exception() is not None]
                for task in done:
                    if task.exception() is None:
                        yield task.result()
                if failures:
                    raise failures[0]
        finally:
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(client.close())
            loop.close()

    async def _one(
        self,
        client: openai.AsyncOpenAI,
        semaphore: asyncio.Semaphore,
        index: int,
        request: ChatRequest,
        sampling: SamplingConfig,
    ) -> tuple[int, Completion]:
        for attempt in range(self.max_retries + 1):
            async with semaphore:
                try:
                    return index, await self._ask(client, request, sampling)
                except _Retryable as e:
                    cause, wait_s = str(e), e.wait_s
            if attempt == self.max_retries:
                break
            self.retries += 1
            delay = self._backoff(attempt, wait_s)
            # A warning, so a stalled teacher is visible in the CLI (a long Retry-After).
            log.warning("%s: %s; retry %d in %.1f s", request.key, cause, attempt + 1, delay)
            await asyncio.sleep(delay)
        raise LLMError(
            f"{request.key}: request failed after {self.max_retries + 1} attempts: {cause}",
            where=self.base_url,
            fix="check the endpoint, or raise max_retries/timeout_s; "
            "answers received so far are cached and a re-run asks only for the rest",
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        # "Equal jitter": at least half the exponential step, so retries spread out.
        step = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
        return step / 2 + random.uniform(0, step / 2)

    async def _ask(
        self, client: openai.AsyncOpenAI, request: ChatRequest, sampling: SamplingConfig
    ) -> Completion:
        params: dict = {
            "model": self.model,
            "messages": request.messages,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            self.max_tokens_field: sampling.max_new_tokens,
        }
        if sampling.seed is not None:
            params["seed"] = sampling.seed
        if sampling.response_schema is not None:
            params["response_format"] = response_format(sampling.response_schema)
        try:
            async with asyncio.timeout(self.timeout_s):
                raw = await client.chat.completions.with_raw_response.create(**params)
                body = raw.text
        except TimeoutError:
            raise _Retryable(f"no answer within {self.timeout_s:g} s") from None
        except openai.APITimeoutError:
            raise _Retryable(f"no answer within {self.timeout_s:g} s") from None
        except openai.APIConnectionError as e:
            raise _Retryable(f"connection failed ({self._scrub(_root_cause(e))})") from None
        except openai.APIStatusError as e:
            message = self._scrub(_error_message(e), 200)
            if e.status_code == 429:
                raise _Retryable(f"rate limited (429): {message}", _retry_after(e)) from None
            if e.status_code >= 500:
                raise _Retryable(f"server error {e.status_code}: {message}") from None
            raise LLMError(
                f"{request.key}: the endpoint rejected the request ({e.status_code}): {message}",
                where=self.base_url,
                fix=_fix_for(e.status_code, self.api_key_env),
            ) from None
        try:
            return _parse_completion(body, self.model)
        except _Retryable as e:
            raise _Retryable(self._scrub(str(e), 200)) from None

    def _scrub(self, text: str, max_chars: int = 300) -> str:
        """Text a server sent, fit for an error line: the API key blanked out (a server may
        echo the request's headers), control characters and markup neutralised, capped."""
        key = self._key or os.environ.get(self.api_key_env)
        if key:
            text = text.replace(key, "***")
        return sanitize(text, max_chars)


def _parse_completion(body: str, model: str) -> Completion:
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        if not isinstance(text, str):
            raise TypeError(f"content is {type(text).__name__}")
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            model=str(data.get("model") or model),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason"),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        # Cut well past the caller's cap: it blanks the key out first, then caps to 200.
        snippet = body[:2000].replace("\n", " ")
        raise _Retryable(f"unparseable response ({type(e).__name__}: {snippet!r})") from None


def _retry_after(e: openai.APIStatusError) -> float | None:
    headers = e.response.headers
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
        if (value := headers.get("retry-after")) is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value).timestamp()
                return max(0.0, when - time.time())
    except (TypeError, ValueError):
        pass
    return None


def _error_message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        body = body.get("message", body)  # the SDK unwraps {"error": {...}} already
    return str(body or e.message).replace("\n", " ")  # capped once its key is blanked out


def _root_cause(e: BaseException) -> str:
    while e.__cause__ is not None:
        e = e.__cause__
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _fix_for(status: int, api_key_env: str) -> str:
    if status in (401, 403):
        return f"check the API key in ${api_key_env}"
    if status == 404:
        return "check the base URL (it usually ends in /v1) and the model name"
    return "check the model name and sampling settings for this endpoint"
