"""A LoRA adapter merged into a copy of its base model, saved once per adapter.

Engines that read a plain model folder (vLLM, llama.cpp's converters) then serve the
distilled student at full speed: vLLM's LoRA path was 4.6x slower than merged weights
on CPU (../shared/notes/models.md). The folder is keyed by the base's identity and the
adapter's weights, so a retrained adapter gets a new one, and it is written atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from slimrec.io import atomic_dir, cache_dir


def merged_folder(base: str, adapter: str, *, cache: Path | None = None) -> Path:
    """``$SLIMREC_CACHE/merged/<hash>/``: ``base`` with ``adapter`` merged in (fp32)."""
    from slimrec.llm.backends.hf import HFBackend

    identity = HFBackend(base, adapter=adapter).model_id  # base identity + adapter weights
    out = (cache or cache_dir()) / "merged" / hashlib.sha256(identity.encode()).hexdigest()[:16]
    if (out / "config.json").is_file():
        return out
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from slimrec.llm.local import resolve_base

    folder = resolve_base(base)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapter, is_trainable=False).merge_and_unload()
    with atomic_dir(out, overwrite=True) as tmp:  # a racing twin wrote the same
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(folder, local_files_only=True).save_pretrained(tmp)
    return out
