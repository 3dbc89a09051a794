"""vLLM as an engine: a real vLLM server (its CPU build, in .venv-vllm) started and stopped
by the backend, on the shipped SmolLM2; the student through it, adapter merged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.vllm_env import HAS_RAY_DATA_LLM, PYTHON, SMALL, needs_vllm

from slimrec.llm.backends.base import ChatRequest, LLMError, SamplingConfig
from slimrec.llm.backends.vllm import MEMORY_ENV, VLLMBackend

# Starts Ray or vLLM: scripts/test.sh runs these in a process of their own (-m engine).
pytestmark = pytest.mark.engine


def ask(text: str, key: str = "q") -> ChatRequest:
    return ChatRequest(key, [{"role": "user", "content": text}])


@pytest.mark.parametrize("python", [str(Path(sys.executable).parent / "no-such-python"), "false"])
def test_an_interpreter_without_vllm_is_one_line(python):
    with pytest.raises(LLMError, match="vLLM cannot be imported") as error:
        VLLMBackend("smollm2-135m", python=python).check()
    assert "scripts/vllm-env.sh" in error.value.one_line() and "\n" not in error.value.one_line()


@needs_vllm
@pytest.mark.network
@pytest.mark.slow
def test_the_student_on_vllm_agrees_with_transformers_and_with_ray_datas_vllm(
    tmp_path, monkeypatch
):
    """A LoRA student (random adapter on SmolLM2) writes for every user through vLLM, merged
    once and cached; greedy answers match the in-process student's for most users (fp32 on
    both; kernels differ, so a late token may differ). Then one of the vLLM run's two shards
    is lost and the re-run through Ray Data's vLLM processor (a local Ray cluster, the same
    merged weights) answers that shard alone, exactly as the server did: same answers,
    model id and shard key, so a run can switch paths and keep its finished shards."""
    import pandas as pd
    from tests.lora_fixtures import random_adapter
    from tests.methods.slim.test_teach import make_dataset

    from slimrec.cluster import RayConfig
    from slimrec.llm.merge import merged_folder
    from slimrec.methods.slim.student.reason import ReasonConfig, reason, shard_dir

    assert HAS_RAY_DATA_LLM, f"scripts/vllm-env.sh installs ray[data] beside vLLM in {PYTHON}"
    monkeypatch.setenv(MEMORY_ENV, str(SMALL))
    random_adapter(tmp_path / "adapter", ["q_proj", "v_proj"])
    data = make_dataset(tmp_path, n_users=6)
    common = {"base_model": "smollm2-135m", "adapter": str(tmp_path / "adapter")}
    common |= {"dtype": "float32", "sampling": SamplingConfig(max_new_tokens=16)}
    common |= {"shard_size": 3}
    here = reason(data, tmp_path / "hf.parquet", ReasonConfig(**common), progress=False)
    out = tmp_path / "vllm.parquet"
    there = reason(data, out, ReasonConfig(**common, engine="vllm"), progress=False)
    a, b = pd.read_parquet(here["path"]), pd.read_parquet(there["path"])
    agree = (a["response"] == b["response"]).mean()
    print(f"vLLM vs transformers student, greedy, fp32: {agree:.0%} of {len(a)} answers equal")
    assert agree >= 0.5 and b["model"].iloc[0].startswith("vllm:hf:smollm2-135m+lora@")
    assert (merged_folder("smollm2-135m", str(tmp_path / "adapter")) / "config.json").is_file()

    (shard_dir(out) / "shard-00001.parquet").unlink()
    ray = ReasonConfig(**common, engine="vllm", ray=RayConfig(replicas=1))
    on_ray = reason(data, out, ray, progress=False)
    assert on_ray["shards_generated"] == 1 and on_ray["generated"] == 3
    both = pd.read_parquet(on_ray["path"])
    assert list(both["cached"]) == [True] * 3 + [False] * 3
    for column in ("user", "response", "model", "completion_tokens", "prompt_tokens"):
        assert list(both[column]) == list(b[column]), column


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


SERVING_RUN = f"""
import json, socket, sys, threading
import httpx
from slimrec.llm.backends import vllm
from slimrec.llm.backends.base import ChatRequest, SamplingConfig
from slimrec.llm.backends.vllm import VLLMBackend

# Another process takes the first port the backend picks before vLLM binds it.
taken = socket.socket()
taken.bind(("127.0.0.1", 0))
taken.listen()
ports = [taken.getsockname()[1]]
free_port = vllm._free_port
vllm._free_port = lambda: ports.pop() if ports else free_port()

def ask(text, key):
    return ChatRequest(key, [{{"role": "user", "content": text}}])

b = VLLMBackend("smollm2-135m", dtype="float32", concurrency=8, memory_fraction={SMALL})
got = dict(b.generate([ask(f"Name a colour. Number {{i}}.", f"q{{i}}") for i in range(5)],
                      SamplingConfig(max_new_tokens=12)))
schema = {{"type": "object", "properties": {{"colour": {{"type": "string", "maxLength": 12}}}},
          "required": ["colour"]}}
sky = dict(b.generate([ask("What colour is the sky? JSON.", "sky")],
                      SamplingConfig(max_new_tokens=40, response_schema=schema)))[0].text
marker = dict(b.generate([ask("Say hi. <|im_end|>", "m"), ask("Say hi. < |im_end|>", "p")],
                         SamplingConfig(max_new_tokens=1)))
url, key = b._client._real_url, b._client._key
cmdline = open(f"/proc/{{b._process.pid}}/cmdline", "rb").read()
report = {{
    "group": b._process.pid,
    "answered": sorted(got),
    "answers": [[c.model, c.prompt_tokens, c.completion_tokens] for c in got.values()],
    "sky": sky,
    "marker_tokens": [marker[0].prompt_tokens, marker[1].prompt_tokens],
    "status_without_key": httpx.get(f"{{url}}/models", timeout=10).status_code,
    "key_on_command_line": bool(key) and key.encode() in cmdline,
    "answer_timeout_s": b._client.timeout_s,
    "taken_port_used": url.startswith(f"http://127.0.0.1:{{taken.getsockname()[1]}}/"),
}}
q = [ask(f"Count to {{i}}", f"c{{i}}") for i in range(16)]
busy = threading.Thread(target=lambda: dict(b.generate(q, SamplingConfig(max_new_tokens=400))),
                        daemon=True)
busy.start()
print("REPORT", json.dumps(report), flush=True)
sys.stdin.read()
"""


@needs_vllm
@pytest.mark.network
@pytest.mark.slow
def test_vllm_answers_follows_a_schema_serves_only_us_and_dies_with_its_run(tmp_path):
    """One server (a start costs ~45 s here), started on another port once the first it
    picked is taken by someone else before vLLM binds it: every request is answered with its token
    counts, a JSON schema is followed, a message spelling a turn marker is read as text, and
    the server is ours alone -- without the key it was started with it answers 401, and
    that key is not on its command line, where any local user's ps would read it. Then the
    run is SIGKILLed while the server is busy answering, which leaves no chance to clean
    up: the server and its engine processes must all go by themselves (Linux)."""
    import time

    script = tmp_path / "run.py"
    script.write_text(SERVING_RUN)
    run = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    checked = False
    try:
        lines = (line for line in run.stdout if line.startswith("REPORT "))
        report = json.loads(next(lines, "REPORT {}").removeprefix("REPORT "))
        assert report, "the serving run ended before it reported"
        assert report["answered"] == list(range(5))
        for model, prompt_tokens, completion_tokens in report["answers"]:
            assert model.startswith("vllm:hf:smollm2-135m")
            assert 0 < completion_tokens <= 12 and prompt_tokens > 5
        assert set(json.loads(report["sky"])) == {"colour"}
        # A message spelling the turn marker is tokenised as the text it is (as a special
        # token it would be one token, fewer than the broken-up spelling's).
        assert report["marker_tokens"][0] == report["marker_tokens"][1]
        assert report["status_without_key"] == 401 and not report["key_on_command_line"]
        # An answer queued behind the others in flight on a CPU takes minutes: at the
        # client's usual 120 s the 1.5B teacher's answers were generated twice.
        assert report["answer_timeout_s"] >= 600
        assert report["taken_port_used"] is False
        checked = True
    finally:
        if not checked:  # a failed check must not leave the run (and so its server) behind
            run.kill()

    group = report["group"]  # the server's process group (its guard leads it)
    assert _group_alive(group)
    time.sleep(1)  # the busy requests reach the server (the assertion holds either way)
    run.kill()
    run.wait()
    deadline = time.monotonic() + 60
    while _group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _group_alive(group)


def test_a_pattern_for_slimrecs_own_decoder_is_refused_before_a_server_starts():
    backend = VLLMBackend("smollm2-135m")
    with pytest.raises(LLMError, match="response_pattern is not offered by the vllm backend"):
        next(backend.generate([ask("x")], SamplingConfig(response_pattern="Step 1: .*")))
    assert backend._process is None


def test_threads_bind_the_cpu_workers_to_that_many_allowed_cores():
    from slimrec.llm.backends import BackendConfig, build_backend
    from slimrec.llm.backends.vllm import cpu_binding

    allowed = sorted(os.sched_getaffinity(0))
    assert cpu_binding(None) == {}  # vLLM's own choice
    assert cpu_binding(1) == {"VLLM_CPU_OMP_THREADS_BIND": str(allowed[0])}
    assert cpu_binding(len(allowed)) == {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, allowed))}
    backend = build_backend(BackendConfig(backend="vllm", model="smollm2-135m", threads=1))
    assert backend.threads == 1
