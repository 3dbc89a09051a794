"""``slimrec serve`` as a deployment runs it: a process, a port, an API key from the env."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from tests.cli_helpers import run as run_cli

KEY = "k3y-never-in-logs"


class ServerProcess:
    """``slimrec ARGS --port 0``: the server binds a free port itself and prints it, so no
    other process can take a port picked for it in between (CI saw exactly that)."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "slimrec.cli", *args, "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output: list[str] = []
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.address: str | None = None

    def _read(self) -> None:
        for line in iter(self.process.stdout.readline, b""):
            text = line.decode(errors="replace")
            self.output.append(text)
            self.lines.put(text)
        self.lines.put(None)

    def url(self) -> str:
        """The address the server printed once loaded (it loads for a while first)."""
        while self.address is None:
            try:
                line = self.lines.get(timeout=600)
            except queue.Empty:
                raise AssertionError("the server printed no address") from None
            assert line is not None, "".join(self.output)
            if found := re.search(r"at (http://127\.0\.0\.1:\d+)/", line):
                self.address = found.group(1)
        return self.address

    def answer(self, path: str) -> dict:
        """The JSON at ``path`` once the server listens (just after it prints its address)."""
        url = self.url() + path
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, "".join(self.output)
            try:
                return httpx.get(url, timeout=2).json()
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"the server did not answer at {url}"
                time.sleep(0.3)

    def stop(self) -> str:
        """Stop the server; everything it printed."""
        self.process.terminate()
        self.process.wait(timeout=60)
        self.reader.join(timeout=60)
        return "".join(self.output)


def test_serve_command_with_api_key(tiny_run):
    env = os.environ | {"SLIMREC_API_KEY": KEY, "HF_HUB_OFFLINE": "1"}
    server = ServerProcess(["serve", "--run", str(tiny_run), "--method", "text-matching"], env)
    try:
        health = server.answer("/health")
        url = server.url()
        assert health["model"]["method"] == "text-matching" and health["student"] is True
        assert httpx.get(f"{url}/items").status_code == 401
        ok = httpx.get(f"{url}/items", params={"q": "pen"}, headers={"X-API-Key": KEY})
        assert ok.status_code == 200 and ok.json()["items"]
        assert httpx.get(f"{url}/").status_code == 200
    finally:
        text = server.stop()
    assert f"at {url}/ (API key required)" in text
    assert KEY not in text


@pytest.mark.parametrize(
    "command", [["serve", "--run", "no-such-run"], ["serve-llm", "--model", "no-such-model"]]
)
def test_a_port_in_use_is_one_line_before_anything_loads(command, capsys):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        # The run and the model do not exist: the port is what is checked first.
        code, _, err = run_cli([*command, "--port", str(port)], capsys)
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err


def test_serve_llm_command_answers_on_its_port(lively_lm):
    server = ServerProcess(
        ["serve-llm", "--model", str(lively_lm), "--served-name", "tiny", "--threads", "1"],
        os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    try:
        models = server.answer("/v1/models")
        assert [m["id"] for m in models["data"]] == ["tiny"]
    finally:
        server.stop()
