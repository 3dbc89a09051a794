"""A PEFT LoRA adapter as a GGUF adapter file, applied by llama.cpp to its quantised base.

The distilled student is a LoRA adapter (Hu et al., ICLR 2022) trained on the shipped
base de-quantised to fp32 (:mod:`slimrec.llm.models`). llama.cpp can apply the same
adapter at run time on the 4-bit base as shipped, if the adapter is written in its
layout: each adapted weight ``W`` (``out x in``) gets ``<gguf name>.lora_a`` (the
``r x in`` matrix A) and ``<gguf name>.lora_b`` (``out x r``), and the file says
``general.type = adapter``, ``adapter.type = lora`` and ``alpha`` (llama.cpp scales by
``alpha / r`` as PEFT does). Two things differ from the Hugging Face names: the tensor
names (``blk.N.attn_q``, mapped by the ``gguf`` package's own table), and for the
``llama`` architecture the rows of the query and key projections, which the GGUF stores
permuted for its rotary layout -- the rows of B are permuted the same way (checked
against the base: ``permute(W_hf) == W_gguf``). The file is cached by the adapter's
weights and the base's identity, and written atomically.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from slimrec.errors import ConfigError
from slimrec.io import atomic_path, cache_dir

# Architectures whose converter permutes the query/key rows (llama.cpp's LlamaModel).
PERMUTED = {"llama"}
SUPPORTED = PERMUTED | {"qwen2"}
PREFIX = "base_model.model."
VERSION = 1  # of the conversion: part of the cache key, so a fixed converter rewrites


def permute_rows(weight: np.ndarray, heads: int) -> np.ndarray:
    """The row order llama.cpp's converter gives a ``llama`` query/key projection: each
    head's two rotary halves interleaved (rows of ``weight``, any number of columns)."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, -1).swapaxes(1, 2).reshape(weight.shape)


def lora_gguf(adapter: str | Path, base_gguf: str | Path, *, cache: Path | None = None) -> Path:
    """``$SLIMREC_CACHE/lora-gguf/<hash>.gguf``: ``adapter`` (a PEFT LoRA folder) for
    llama.cpp on ``base_gguf`` (the model the adapter was trained on, as GGUF)."""
    adapter, base_gguf = Path(adapter), Path(base_gguf)
    weights = adapter / "adapter_model.safetensors"
    if not weights.is_file() or not (adapter / "adapter_config.json").is_file():
        raise ConfigError(
            "not a LoRA adapter folder (adapter_config.json, adapter_model.safetensors)",
            where=adapter,
            fix="give slimrec distill's OUT/adapter",
        )
    from slimrec.llm.backends.hf import weights_hash  # the hash that names its answers

    identity = f"v{VERSION}|{weights_hash(adapter)}|{base_gguf.name}@{base_gguf.stat().st_size}"
    name = hashlib.sha256(identity.encode()).hexdigest()[:16]
    out = (cache or cache_dir()) / "lora-gguf" / f"{name}.gguf"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        write_lora_gguf(adapter, base_gguf, tmp)
    return out


def write_lora_gguf(adapter: Path, base_gguf: Path, dest: Path) -> None:
    """Convert (see the module docstring); every adapted weight is checked against the
    base's tensor of that name and shape."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    unsupported = [
        k for k in ("use_dora", "use_rslora", "fan_in_fan_out", "rank_pattern", "alpha_pattern")
        if config.get(k)
    ]  # fmt: skip
    if config.get("peft_type", "LORA") != "LORA" or unsupported:
        raise ConfigError(
            f"llama.cpp applies plain LoRA; this adapter uses {unsupported or config['peft_type']}",
            where=adapter,
            fix="use engine: hf for this adapter",
        )
    base = gguf.GGUFReader(base_gguf)
    arch = str(base.fields["general.architecture"].contents())
    if arch not in SUPPORTED:
        raise ConfigError(
            f"no LoRA conversion for the {arch!r} architecture (known: {sorted(SUPPORTED)})",
            where=base_gguf,
            fix="use engine: hf for this student",
        )
    meta = {name: field.contents() for name, field in base.fields.items() if name.startswith(arch)}
    n_head = int(meta[f"{arch}.attention.head_count"])
    heads = {"attn_q": n_head, "attn_k": int(meta.get(f"{arch}.attention.head_count_kv", n_head))}
    names = gguf.get_tensor_name_map(
        {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch], int(meta[f"{arch}.block_count"])
    )
    shapes = {t.name: tuple(int(n) for n in t.shape) for t in base.tensors}  # ggml order: (in, out)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    writer = gguf.GGUFWriter(str(dest), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    pairs = sorted(k[: -len(".lora_A.weight")] for k in tensors if k.endswith(".lora_A.weight"))
    if not pairs:
        raise ConfigError("the adapter holds no LoRA weights", where=adapter)
    for module in pairs:
        a = tensors[f"{module}.lora_A.weight"].astype(np.float32)
        b = tensors[f"{module}.lora_B.weight"].astype(np.float32)
        name = names.get_name(module.removeprefix(PREFIX))
        if name is None or f"{name}.weight" not in shapes:
            raise ConfigError(f"no tensor in the base for adapted module {module}", where=base_gguf)
        if shapes[f"{name}.weight"] != (a.shape[1], b.shape[0]):
            raise ConfigError(
                f"{module}: adapter {b.shape[0]}x{a.shape[1]} against the base's "
                f"{shapes[f'{name}.weight']}",
                where=adapter,
                fix="convert the adapter with the base it was trained on",
            )
        kind = name.rsplit(".", 1)[-1]
        if arch in PERMUTED and kind in heads:
            b = permute_rows(b, heads[kind])
        writer.add_tensor(f"{name}.weight.lora_a", np.ascontiguousarray(a))
        writer.add_tensor(f"{name}.weight.lora_b", np.ascontiguousarray(b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
