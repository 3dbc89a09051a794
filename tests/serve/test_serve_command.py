"""``slimrec serve`` as a deployment runs it: a process, a port, an API key from the env."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
from tests.llm_server_fixtures import free_port

KEY = "k3y-never-in-logs"


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
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                health = httpx.get(f"{url}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "slimrec serve did not start"
                time.sleep(0.3)
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
