"""What machine computed a figure: CPU model, cores, vector extensions, accelerator.

Speeds, and the last digits of float results, depend on the CPU's vector extensions
(machines of one kind here differ: AVX2 only, AVX-512 with BF16, AMX), so every report
and benchmark states them. One reading of ``lscpu``, shared by the pipeline's stage
records, its report and the benchmark scripts.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from typing import Any

# The flags that decide how fast (and in which precision) torch and the LLM engines run.
VECTOR_PREFIXES = ("avx", "amx")
VECTOR_FLAGS = ("fma", "f16c")


@cache
def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = (line.split(":", 1) for line in out.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in fields}


def cpu_model() -> str:
    return _lscpu().get("Model name") or platform.processor() or platform.machine()


def vector_flags() -> list[str]:
    """The CPU's vector extensions (lscpu flags: avx*, amx*, fma, f16c), in lscpu's order."""
    flags = _lscpu().get("Flags", "").split()
    return [f for f in flags if f.startswith(VECTOR_PREFIXES) or f in VECTOR_FLAGS]


def cores() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def gpu() -> str | None:
    """The first GPU's name, read without starting CUDA in this process (a pipeline later
    forks vLLM or Ray workers, which a live CUDA context would break)."""
    try:
        import torch

        if torch.cuda.is_initialized():
            return torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return _nvidia_smi_gpu()


@cache
def _nvidia_smi_gpu() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = out.stdout.strip().splitlines() if out.returncode == 0 else []
    return names[0].strip() if names else None


def hardware() -> dict[str, Any]:
    """CPU model, cores, vector flags, accelerator, Python and torch versions."""
    info: dict[str, Any] = {"cpu": cpu_model(), "cores": cores(), "flags": vector_flags()}
    info["python"] = platform.python_version()
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:  # pragma: no cover
        pass
    info["gpu"] = gpu()
    return info


def describe() -> str:
    """One line: ``AMD EPYC, 2 cores; fma avx f16c avx2`` (and the GPU when there is one)."""
    accelerator = f"; GPU {name}" if (name := gpu()) else ""
    return f"{cpu_model()}, {cores()} cores; {' '.join(vector_flags())}{accelerator}"
