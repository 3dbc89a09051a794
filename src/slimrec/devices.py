"""Where torch work runs: one device policy for the backbones, the in-process LLMs and the
text encoder, so ``auto`` means the same everywhere (CUDA when there is one)."""

from __future__ import annotations

import torch

from slimrec.errors import ConfigError


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu``, ``cuda``, ``cuda:N``; one line when absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {name!r}", where="device", fix="auto|cpu|cuda") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA is not available here", where="device", fix="use --device cpu")
    return device
