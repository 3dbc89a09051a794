"""What the vLLM environment offers, probed once per test session: importing vLLM and
Ray Data's LLM processor costs ~15 s of a fresh interpreter, so both are asked in one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from slimrec.llm.backends.vllm import PYTHON_ENV

PYTHON = os.environ.get(PYTHON_ENV, sys.executable)
SMALL = 0.12  # of this machine's memory: the 135M model and a small KV cache

_PROBE = "import vllm\nprint('vllm')\nimport ray.data.llm\nprint('ray.data.llm')\n"


def _importable() -> set[str]:
    try:
        probe = subprocess.run([PYTHON, "-c", _PROBE], capture_output=True, text=True)
    except OSError:  # no such interpreter
        return set()
    return set(probe.stdout.split())


_OFFERED = _importable()
HAS_VLLM = "vllm" in _OFFERED
HAS_RAY_DATA_LLM = "ray.data.llm" in _OFFERED
_OFFLINE = os.environ.get("SLIMREC_OFFLINE") == "1"
_WHY = f"CI runs scripts/vllm-env.sh, which installs both, and sets {PYTHON_ENV}"

needs_vllm = pytest.mark.skipif(
    not HAS_VLLM or _OFFLINE,
    reason=f"vLLM not importable by {PYTHON} (or SLIMREC_OFFLINE=1): {_WHY}",
)
needs_ray_vllm = pytest.mark.skipif(
    not (HAS_VLLM and HAS_RAY_DATA_LLM) or _OFFLINE,
    reason=f"vLLM and ray.data.llm not importable by {PYTHON} (or SLIMREC_OFFLINE=1): {_WHY}",
)
