"""Random-weight LLM folders of published architectures: what a GPU timing needs.

A lent GPU machine reaches no hub and its working tree travels under 64 MiB, so no
shipped weights go there (SmolLM2-135M alone is 270 MB in bf16). An epoch's cost does not
depend on the weights' values, only on the architecture and the token counts, so
``bench/gpu_llm_timing.sh`` times LLM-SRec and DELRec on models built here from their
published configurations with random weights, tokenised by SmolLM2's tokenizer (carried:
3.5 MB), whose English token counts are close to Llama's and T5's. What differs from the
real models: the vocabulary (49,152 rows instead of 128,256 for Llama-3.2 and 32,128 for
T5: a few percent of a step's work, in the embedding and the LM head that DELRec's
scoring reads) and Llama-3.2's long-context RoPE scaling (no cost at these lengths).
Nothing trained here means anything: these folders are for timing only.

    python bench/llm_from_config.py --arch llama-3.2-3b --tokenizer DIR --out /tmp/m/llama3b
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path

import torch

# Published hyperparameters (the models' config.json on the Hugging Face Hub).
ARCHS: dict[str, tuple[str, dict]] = {
    "smollm2-135m": (
        "llama",
        dict(
            hidden_size=576,
            intermediate_size=1536,
            num_hidden_layers=30,
            num_attention_heads=9,
            num_key_value_heads=3,
            max_position_embeddings=8192,
            rope_theta=100_000.0,
            tie_word_embeddings=True,
        ),
    ),
    "llama-3.2-3b": (
        "llama",
        dict(
            hidden_size=3072,
            intermediate_size=8192,
            num_hidden_layers=28,
            num_attention_heads=24,
            num_key_value_heads=8,
            max_position_embeddings=8192,
            rope_theta=500_000.0,
            tie_word_embeddings=True,
        ),
    ),
    "flan-t5-xl": (
        "t5",
        dict(
            d_model=2048,
            d_ff=5120,
            d_kv=64,
            num_heads=32,
            num_layers=24,
            num_decoder_layers=24,
            feed_forward_proj="gated-gelu",
            tie_word_embeddings=False,
        ),
    ),
    # For a dry run of the plumbing on a CPU: the same families, two layers each.
    "tiny-llama": (
        "llama",
        dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=8192,
            rope_theta=100_000.0,
            tie_word_embeddings=True,
        ),
    ),
    "tiny-t5": (
        "t5",
        dict(d_model=64, d_ff=128, d_kv=16, num_heads=4, num_layers=2, num_decoder_layers=2),
    ),
}


def tokenizer(source: Path, *, seq2seq: bool):
    """SmolLM2's tokenizer rebuilt from its ``tokenizer.json`` by the transformers at hand
    (the saved config of a newer version may name a class an older one lacks)."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(source / "tokenizer.json"),
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>" if not seq2seq else "<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    template = source / "chat_template.jinja"
    if template.is_file():
        tok.chat_template = template.read_text(encoding="utf-8")
    if seq2seq:
        tok.add_special_tokens({"additional_special_tokens": ["<extra_id_0>"]})
    return tok


def build(arch: str, tokenizer_dir: Path, out: Path, device: str, dtype: torch.dtype) -> dict:
    family, params = ARCHS[arch]
    tok = tokenizer(tokenizer_dir, seq2seq=family == "t5")
    start = time.perf_counter()
    if family == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        params = dict(params)
        theta = params.pop("rope_theta")
        if "rope_parameters" in inspect.signature(LlamaConfig).parameters:
            params["rope_parameters"] = {"rope_theta": theta, "rope_type": "default"}
        else:
            params["rope_theta"] = theta
        config = LlamaConfig(
            vocab_size=len(tok),
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            **params,
        )
        model_cls = LlamaForCausalLM
    else:
        from transformers import T5Config, T5ForConditionalGeneration

        config = T5Config(
            vocab_size=len(tok),
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            decoder_start_token_id=tok.pad_token_id,
            **params,
        )
        model_cls = T5ForConditionalGeneration
    torch.manual_seed(0)
    with torch.device(device):
        model = model_cls(config).to(dtype)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    info = {
        "arch": arch,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab": len(tok),
        "dtype": str(dtype).removeprefix("torch."),
        "seconds": round(time.perf_counter() - start, 1),
        "note": "random weights of the published architecture: for timing only",
    }
    (out / "random-weights.json").write_text(json.dumps(info, indent=2))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCHS), required=True)
    parser.add_argument(
        "--tokenizer", type=Path, required=True, help="SmolLM2's tokenizer.json folder"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    args = parser.parse_args()
    info = build(args.arch, args.tokenizer, args.out, args.device, getattr(torch, args.dtype))
    print(json.dumps(info))


if __name__ == "__main__":
    main()
