"""``slimrec serve`` as a deployment runs it: a process, a port, an API key from the env."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from tests.cli_helpers import run as run_cli
from tests.llm_server_fixtures import free_port

KEY = "k3y-never-in-logs"


def first_answer(server: subprocess.Popen, url: str) -> dict:
    """The JSON at ``url`` once the server process answers (it loads for a while first)."""
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, server.stdout.read().decode()
        try:
            return httpx.get(url, timeout=2).json()
        except httpx.HTTPError:
            assert time.monotonic() < deadline, f"the server did not answer at {url}"
            time.sleep(0.3)


def test_serve_command_with_api_key(tiny_run):
    port = free_port()
    env = os.environ | {"SLIMREC_API_KEY": KEY, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "slimrec.cli", "serve", "--run", str(tiny_run)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--method", "text-matching"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        health = first_answer(server, f"{url}/health")
        assert health["model"]["method"] == "text-matching" and health["student"] is True
        assert httpx.get(f"{url}/items").status_code == 401
        ok = httpx.get(f"{url}/items", params={"q": "pen"}, headers={"X-API-Key": KEY})
        assert ok.status_code == 200 and ok.json()["items"]
        assert httpx.get(f"{url}/").status_code == 200
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=60)
    text = out.decode(errors="replace")
    assert f"at http://127.0.0.1:{port}/ (API key required)" in text
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
    port = free_port()
    command = [sys.executable, "-m", "slimrec.cli", "serve-llm", "--model", str(lively_lm)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--served-name", "tiny", "--threads", "1"],
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        models = first_answer(server, f"http://127.0.0.1:{port}/v1/models")
        assert [m["id"] for m in models["data"]] == ["tiny"]
    finally:
        server.terminate()
        server.communicate(timeout=60)
