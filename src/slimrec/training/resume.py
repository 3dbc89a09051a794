"""What a resumable training loop keeps between runs: RNG states and its metrics log.

Shared by the recommender trainer (:mod:`slimrec.training.trainer`) and the student's
distillation (:mod:`slimrec.methods.slim.student.distill`): a killed run resumes with the random
streams it had (CPU and every CUDA device), and the epochs it logged after its last
checkpoint are dropped from ``metrics.jsonl`` before they are run again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from slimrec.io import write_text_atomic


def rng_state() -> dict[str, Any]:
    """The CPU RNG state, and every CUDA device's where CUDA is there."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`rng_state` saved (CUDA states only where CUDA is there)."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trim_metrics(path: Path, epochs_done: int) -> None:
    """Drop lines of epochs that a killed run logged but did not checkpoint."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["epoch"] < epochs_done]
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(line + "\n" for line in kept))
