"""Local models through vLLM: its OpenAI-compatible server, started and stopped for you.

vLLM is the engine GPU users run, and its CPU build runs on this kind of machine too
(../shared/notes/models.md: SmolLM2-135M in bf16 at ~1.2x slimrec's own decoder, 2x
llama.cpp, batched). It pins its own torch and transformers, so it lives in an
environment of its own: ``python`` names that interpreter (default
``$SLIMREC_VLLM_PYTHON``, else this one; ``scripts/vllm-env.sh`` makes ``.venv-vllm``).

The backend starts ``vllm.entrypoints.openai.api_server`` on a free 127.0.0.1 port, waits
for ``/health``, and sends the requests through the openai backend (vLLM batches them
continuously; a JSON schema goes as ``response_format`` and becomes its guided decoding).
Message text reaches the server with every special token of the model's tokenizer broken
up (:func:`slimrec.llm.chat.plain_messages`): vLLM renders the chat template and parses
the special tokens of the result, so a title spelling a turn marker would forge one.
``close()`` stops the server. The server takes a random API key made for it (passed in its
environment, never on its command line, where ``ps`` would show it), so no other local
process can use it. A model is a shipped name (its converted safetensors
folder), a folder, or a Hub id (vLLM then downloads it itself). A LoRA adapter is merged
into a copy of the base first (cached by the adapter's hash): vLLM's own LoRA path was
4.6x slower on CPU.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from slimrec.llm.backends.base import (
    ChatRequest,
    Completion,
    LLMError,
    SamplingConfig,
    only_local_decoding,
)
from slimrec.llm.chat import plain_messages, special_tokens

PYTHON_ENV = "SLIMREC_VLLM_PYTHON"
MEMORY_ENV = "SLIMREC_VLLM_MEMORY_FRACTION"  # default 0.3
SERVED_NAME = "slimrec"


# The server runs as the child of this guard, in the process group the backend starts.
# When the run that started it dies (PR_SET_PDEATHSIG sends the guard SIGTERM) or close()
# signals the group, the guard kills every process of the group at once: vLLM's own
# graceful shutdown can hang with requests in flight (a server outlived its killed test
# by 40 minutes), and PR_SET_PDEATHSIG reaches only the direct child, not vLLM's engine.
_GUARD = (
    "import os, signal, subprocess, sys\n"
    "signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))\n"
    "sys.exit(subprocess.call(sys.argv[1:]))\n"
)


def _die_with_parent() -> None:
    """In the guard before exec: on Linux, get SIGTERM when the process that started it
    dies, however it dies (a killed run must not leave a server holding memory)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: close() and Ctrl-C still stop it
        pass


def start_guarded(python: str, args: Sequence[str], **popen: Any) -> subprocess.Popen:
    """``python args`` under the guard, in a process group of its own that dies with this
    process or on ``terminate()`` (see ``_GUARD``)."""
    return subprocess.Popen(
        [python, "-c", _GUARD, *args],
        start_new_session=True,
        preexec_fn=_die_with_parent,
        **popen,
    )


def log_tail(path: Path | None, lines: int = 3) -> str:
    """The last ``lines`` of a log as one line (for a one-line error)."""
    text = path.read_text(errors="replace") if path else ""
    return " | ".join(text.strip().splitlines()[-lines:])[-600:]


def vllm_version(python: str | None = None) -> str | None:
    """vLLM's version as ``python`` (default ``$SLIMREC_VLLM_PYTHON``, else this one)
    imports it; None where it cannot."""
    python = python or os.environ.get(PYTHON_ENV) or sys.executable
    code = "import vllm, sys; sys.stdout.write(vllm.__version__)"
    try:
        probe = subprocess.run([python, "-c", code], capture_output=True, text=True)
    except OSError:  # no such interpreter
        return None
    return probe.stdout.strip() if probe.returncode == 0 else None


def cpu_binding(threads: int | None) -> dict[str, str]:
    """The environment that has vLLM's CPU build compute on ``threads`` cores (None: its
    own choice, which keeps one core for its scheduler). On 2 cores both computing were
    faster for the 1.5B teacher (1.5x, docs/benchmarks.md, "The teacher through vLLM")
    and for the 135M student (1.5x, "The aim end to end"). Ignored on GPUs."""
    if threads is None:
        return {}
    from slimrec.machine import allowed_cpus

    chosen = (allowed_cpus() or list(range(threads)))[:threads]
    return {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, chosen))}


PORT_ATTEMPTS = 3
PORT_TAKEN = "Address already in use"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMBackend:
    """``generate`` over a vLLM server this object starts (see the module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        dtype: str = "auto",
        python: str | None = None,
        concurrency: int = 64,
        max_model_len: int = 4096,
        memory_fraction: float | None = None,
        startup_timeout_s: float = 1800.0,  # ~1 min when quiet; >10 min seen on a busy CPU
        request_timeout_s: float = 3600.0,
        threads: int | None = None,
        extra_args: Sequence[str] = (),
    ):
        self.model_name = model
        self.adapter = adapter
        self.dtype = dtype
        self.python = python or os.environ.get(PYTHON_ENV) or sys.executable
        self.concurrency = concurrency
        self.max_model_len = max_model_len
        # Weights + KV cache, as a share of the GPU's memory, or of the machine's on the CPU
        # build; vLLM's own default (0.92) leaves nothing for the recommender beside it.
        self.memory_fraction = memory_fraction or float(os.environ.get(MEMORY_ENV, "0.3"))
        self.startup_timeout_s = startup_timeout_s
        # One answer waits behind every other in flight: with 32 answers of the 1.5B on a
        # CPU, one took ~190 s, and a client timeout of 120 s had it generated twice. The
        # server is ours and watched (a dead one fails the request), so wait long.
        self.request_timeout_s = request_timeout_s
        self.threads = threads
        self.extra_args = list(extra_args)
        self._process: subprocess.Popen | None = None
        self._log: Path | None = None
        self._client = None
        self._healthy = False
        self._model_id: str | None = None
        self._specials: list[str] = []

    @property
    def model_id(self) -> str:
        # The weights decide the answers, as for the hf backend; the engine is named too,
        # so answers of different engines never mix in a cache.
        if self._model_id is None:
            from slimrec.llm.backends.hf import HFBackend

            self._model_id = "vllm:" + HFBackend(self.model_name, adapter=self.adapter).model_id
        return self._model_id

    def check(self) -> None:
        """The interpreter can import vLLM and the model resolves; fails in one line."""
        if getattr(self, "version", None):
            return  # checked once
        version = vllm_version(self.python)
        if version is None:
            raise LLMError(
                f"vLLM cannot be imported by {self.python}",
                fix=f"run scripts/vllm-env.sh and set {PYTHON_ENV}=.venv-vllm/bin/python "
                "(vLLM pins its own torch and transformers), or use backend: hf / llamacpp",
            )
        self.version = version
        self.folder()

    def folder(self) -> str:
        """What vLLM loads: the (adapter-merged) model folder, or a Hub id."""
        from slimrec.hub import is_hub_id
        from slimrec.llm.local import resolve_base

        if self.adapter:
            from slimrec.llm.merge import merged_folder

            return str(merged_folder(self.model_name, self.adapter))
        if is_hub_id(self.model_name) and not Path(self.model_name).exists():
            return self.model_name
        return str(resolve_base(self.model_name))

    def _start(self):
        if self._client is not None:
            return self._client
        self.check()
        from transformers import AutoTokenizer

        self._specials = special_tokens(AutoTokenizer.from_pretrained(self.folder()))
        key = secrets.token_urlsafe(24)
        # vLLM binds the port we name a few seconds after we chose it free; another process
        # may take it in between (CI saw that race with our own servers). That start fails
        # at once and is tried again on another port.
        for _ in range(PORT_ATTEMPTS):
            base = self._launch(_free_port(), key)
            if base is not None:
                break
            self.close()
        else:
            raise LLMError(f"the vLLM server found its port taken {PORT_ATTEMPTS} times")
        from slimrec.llm.backends.openai_backend import OpenAIBackend

        self._client = OpenAIBackend(
            SERVED_NAME,
            base_url=f"{base}/v1",
            api_key=key,
            concurrency=self.concurrency,
            timeout_s=self.request_timeout_s,
            max_retries=2,
        )
        return self._client

    def _launch(self, port: int, key: str) -> str | None:
        """Start the server on ``port``; its base URL once it answers, None if the port was
        taken before it could bind."""
        handle, name = tempfile.mkstemp(prefix="slimrec-vllm-", suffix=".log")
        os.close(handle)
        self._log = Path(name)
        cmd = [self.python, "-m", "vllm.entrypoints.openai.api_server"]
        cmd += ["--model", self.folder(), "--served-model-name", SERVED_NAME]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--dtype", self.dtype]
        # Eager mode: torch.compile adds ~90 s of start-up on CPU and gained nothing there.
        cmd += ["--max-model-len", str(self.max_model_len), "--enforce-eager"]
        cmd += ["--gpu-memory-utilization", str(self.memory_fraction)]
        cmd += self.extra_args
        with self._log.open("w") as log:
            # Its own process group: vLLM starts an engine process that must stop with it.
            self._process = start_guarded(
                self.python,
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **cpu_binding(self.threads), "VLLM_API_KEY": key},
            )
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self._process.poll() is not None:
                if PORT_TAKEN in self._log.read_text(errors="replace"):
                    return None
                raise LLMError(
                    f"the vLLM server exited with code {self._process.returncode} at start: "
                    f"{self._tail()}",
                    where=str(self._log),
                )
            try:
                # Ours, not another server that took the port first: it serves our name.
                answer = httpx.get(f"{base}/v1/models", headers=auth, timeout=2)
                served = answer.json().get("data", [])
                if any(m.get("id") == SERVED_NAME for m in served):
                    self._healthy = True
                    return base
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                log = str(self._log)
                self.close()
                raise LLMError(
                    f"the vLLM server did not start within {self.startup_timeout_s:g} s",
                    where=log,
                )
            time.sleep(1)

    def _tail(self, lines: int = 3) -> str:
        return log_tail(self._log, lines)

    def generate(
        self, requests: Sequence[ChatRequest], sampling: SamplingConfig
    ) -> Iterator[tuple[int, Completion]]:
        only_local_decoding(sampling, "vllm")  # before a server is started for nothing
        client = self._start()
        plain = [replace(r, messages=plain_messages(r.messages, self._specials)) for r in requests]
        for index, completion in client.generate(plain, sampling):
            completion.model = self.model_id
            yield index, completion

    def close(self) -> None:
        process, self._process, self._client = self._process, None, None
        if process is not None:
            for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
                try:
                    os.killpg(process.pid, sig)  # the server and its engine process
                except ProcessLookupError:
                    break
                try:
                    process.wait(wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log is not None and self._healthy and self._log.exists():
            self._log.unlink()  # a server that failed keeps its log: the error names it
        self._log, self._healthy = None, False

    def __del__(self) -> None:
        self.close()
