"""Local language models: a name or folder resolved to a folder, and the one dtype policy
every in-process LLM (student, LLM-SRec, DELRec) follows (devices: :mod:`slimrec.devices`).

Nothing is fetched from a hub here unless the name is a Hub id and the user allowed it
(:func:`slimrec.llm.models.resolve_model`); a folder path is used as it is.
"""

from __future__ import annotations

from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_base(name: str) -> Path:
    """A local model folder for a shipped model name, a Hub id or a folder path."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder.resolve()
    from slimrec.llm.models import resolve_model

    return Path(resolve_model(name))


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: bfloat16 on a GPU that has it, else float32 (CPU half matmuls are slow)."""
    if name != "auto":
        return DTYPES[name]
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def pick_autocast(name: str | None, device: torch.device) -> torch.dtype | None:
    """The dtype training computes in under ``torch.autocast`` (weights stay as loaded),
    or None for none. ``auto``: bfloat16 where the device has it natively (a GPU with
    bf16, a CPU with AVX-512 BF16 or AMX), else none."""
    if name is None:
        return None
    if name != "auto":
        return DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    from slimrec.machine import native_bf16

    return torch.bfloat16 if device.type == "cpu" and native_bf16() else None
