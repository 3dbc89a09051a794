"""What machine computed a figure, and how many threads a job may use on it.

Speeds, and the last digits of float results, depend on the CPU's vector extensions
(machines of one kind here differ: AVX2 only, AVX-512 with BF16, AMX), so every report
and benchmark states them. One reading of ``lscpu``, shared by the pipeline's stage
records, its report and the benchmark scripts.

Threads: torch (and llama.cpp) default to one thread per core, and their threads wait for
each other at every operation. When other work already keeps those cores busy, the
waiting dominates: with another process on one of 2 cores the student decoded 4x to 17x
slower on two threads than on one (docs/benchmarks.md, "Threads on a busy machine"). So where a
job is not told its thread count it takes the cores other processes leave idle now
(:func:`default_threads`), at least one.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
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


def native_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX): there bf16 made
    a student training step 1.31x faster; without them torch emulates it, slower than
    float32."""
    return bool({"avx512_bf16", "amx_bf16"} & set(vector_flags()))


def allowed_cpus() -> list[int] | None:
    """The CPU ids this process may run on, in order; None where the OS does not say."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def cores() -> int | None:
    cpus = allowed_cpus()
    return len(cpus) if cpus is not None else os.cpu_count()


def busy_cores(seconds: float = 0.2) -> float | None:
    """How many of this process's cores other processes keep busy, measured over
    ``seconds`` (/proc/stat, less this process's own CPU time); None where there is no
    /proc/stat."""
    cpus = allowed_cpus()
    before, own_before, wall_before = _busy_jiffies(cpus), _own_seconds(), time.monotonic()
    if before is None:
        return None
    time.sleep(seconds)
    after, own_after, wall_after = _busy_jiffies(cpus), _own_seconds(), time.monotonic()
    if after is None:
        return None
    return others_busy(
        after - before, own_after - own_before, wall_after - wall_before, _clock_ticks()
    )


def others_busy(busy_jiffies: int, own_seconds: float, wall_seconds: float, ticks: int) -> float:
    """Cores kept busy by other processes: the CPUs' busy time less ours, per second."""
    if wall_seconds <= 0:
        return 0.0
    return max(0.0, (busy_jiffies / ticks - own_seconds) / wall_seconds)


def _busy_jiffies(cpus: list[int] | None) -> int | None:
    """Busy clock ticks (all but idle and iowait) summed over ``cpus`` (None: all)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            lines = f.readlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        busy += sum(values) - values[3] - values[4]
    return busy


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


THREADS = (
    "CPU threads (default: this process's cores less those other processes keep busy when "
    "the job starts, at least 1; one per core would wait on the busy ones)."
)
_chosen: dict[str, tuple[float, int]] = {}  # the last choice and when it was made
_REUSE_SECONDS = 30.0  # jobs started within this reuse it (a test suite builds hundreds)


def default_threads() -> int:
    """Threads for a job not told its count: this process's cores less those other
    processes keep busy now (rounded), at least one. Said once on stderr when that is
    fewer than the cores."""
    now = time.monotonic()
    if "last" in _chosen and now - _chosen["last"][0] < _REUSE_SECONDS:
        return _chosen["last"][1]
    n_cores = cores() or 1
    busy = busy_cores()
    threads = n_cores if busy is None else max(1, min(n_cores, int(n_cores - busy + 0.5)))
    if threads < n_cores and _chosen.get("last", (0, n_cores))[1] != threads:
        print(
            f"slimrec: {busy:.1f} of {n_cores} cores busy with other work: {threads} "
            "thread(s) (give threads to choose)",
            file=sys.stderr,
        )
    _chosen["last"] = (now, threads)
    return threads


def set_torch_threads(threads: int | None) -> int:
    """Set torch's CPU threads (process-wide) to ``threads``, else :func:`default_threads`;
    return the count."""
    import torch

    count = threads or default_threads()
    torch.set_num_threads(count)
    return count


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
