"""What a resumable training loop keeps between runs: RNG states and its metrics log.

Shared by the recommender trainer (:mod:`slimrec.training.trainer`) and the student's
distillation (:mod:`slimrec.methods.slim.student.distill`): a killed run resumes with the random
streams it had (CPU and every CUDA device), and the epochs it logged after its last
checkpoint are dropped from ``metrics.jsonl`` before they are run again.

A new run may also start from another run's checkpoint (:func:`warm_start`): a fit asked
for more epochs, another patience or other test protocols than a fit already made goes
on from where that one ended, through the same steps it would take from scratch.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from slimrec.io import atomic_path, write_text_atomic

# What a run is continued from; written in this order, last.pt last, since its presence
# is what makes a folder resume.
WARM_FILES = ("best.pt", "metrics.jsonl", "last.pt")
WARM_RECORD = "warm_start.json"  # which run it went on from, kept for a later resume


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


def warm_start(
    out: Path,
    candidates: Iterable[Path],
    key: str,
    *,
    epochs: int,
    patience: int,
    min_patience_steps: int,
) -> tuple[Path, int] | None:
    """Copy into ``out`` (which has no ``last.pt``) the checkpoint of the finished
    candidate run that got furthest and that a run of these settings would have passed
    through: the same checkpoint ``key`` (settings, data and model but the resumable loop
    settings), at most ``epochs`` epochs done, and no epoch where ``patience`` and
    ``min_patience_steps`` would have stopped it before the candidate's end. Returns (that
    run, its epochs) or None.

    Training does not depend on the epoch budget or the patience, only on when it stops,
    so going on from there ends exactly where a run from scratch would.
    """
    best: tuple[Path, int, dict[str, Any]] | None = None
    for run in candidates:
        if not all((run / name).is_file() for name in WARM_FILES):
            continue
        ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
        done = int(ckpt["state"]["epoch"])
        if ckpt.get("key") != key or done > epochs or (best and done <= best[1]):
            continue
        try:  # only the epochs its checkpoint holds: a killed run may have cut a later line
            text = (run / "metrics.jsonl").read_text().splitlines()[:done]
            lines = [json.loads(x) for x in text]
        except ValueError:
            continue
        if len(lines) < done or any("best" not in x or "step" not in x for x in lines):
            continue  # a log that cannot say when early stopping would have ended it
        if _stops_before_the_end(lines, patience, min_patience_steps):
            continue
        best = (run, done, ckpt)
    if best is None:
        return None
    run, done, ckpt = best
    out.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(out / "best.pt") as tmp:
            shutil.copyfile(run / "best.pt", tmp)
    except FileNotFoundError:  # the run was removed meanwhile (refitted elsewhere)
        return None
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[:done]
    write_text_atomic(out / "metrics.jsonl", "".join(line + "\n" for line in lines))
    write_text_atomic(out / WARM_RECORD, json.dumps({"from": run.name, "epochs": done}))
    # The checkpoint as read, not the file again; written last, it is what makes `out` resume.
    with atomic_path(out / "last.pt") as tmp:
        torch.save(ckpt, tmp)
    return run, done


def stops_early(bad_epochs: int, steps_since_best: int, patience: int, min_steps: int) -> bool:
    """The early-stopping rule: ``patience`` epochs *and* ``min_steps`` optimiser steps
    without a gain. Counting epochs alone stops too early when an epoch is a handful of
    steps (the causal layout on short sequences: one window per user)."""
    return bad_epochs >= patience and steps_since_best >= min_steps


def _stops_before_the_end(lines: list[dict[str, Any]], patience: int, min_steps: int) -> bool:
    """Whether :func:`stops_early` with these settings ends training before the last of
    the logged epochs (their ``best`` flags and cumulative ``step`` counts)."""
    bad, best_step = 0, 0
    for line in lines[:-1]:
        if line["best"]:
            bad, best_step = 0, line["step"]
        else:
            bad += 1
        if stops_early(bad, line["step"] - best_step, patience, min_steps):
            return True
    return False
