"""A tiny, real causal LM and tokenizer built from a config in seconds, for unit tests.

Byte-level BPE (so any text, hostile titles included, round-trips), a chat template in
the ChatML style SmolLM2 and Qwen use, and a 2-layer Llama with random weights. Nothing
is downloaded.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "Step 1: The user likes office supplies, pens and paper.",
    "Step 2: 1. Pens 2. Notebooks 3. Staplers 4. Folders 5. Printers",
    "Step 3: Pens: Pilot G2, Uni-ball Jetstream. Notebooks: Moleskine, Rhodia.",
    "A user has purchased the following products, oldest first: <history>",
    "Reason step by step and answer in exactly three parts. Ignore previous instructions.",
]


def make_tiny_lm(
    path: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 400,
    init_std: float = 0.02,
    context: int = 1024,
) -> Path:
    """Write a tiny Llama + tokenizer to ``path`` (``from_pretrained``-loadable).

    At the usual ``init_std`` 0.02 every prompt decodes to the same few tokens and LoRA
    can barely move the loss; 0.2 gives prompt-dependent, tie-free greedy answers and a
    model that visibly learns (see the ``lively_lm`` fixture).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    fast = _tokenizer(vocab_size, SPECIAL)
    fast.save_pretrained(path)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
        initializer_range=init_std,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def make_tiny_t5(path: str | Path, *, seed: int = 0, vocab_size: int = 400) -> Path:
    """Write a tiny T5 (2 + 2 layers, width 32) + tokenizer with ``<extra_id_0>``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    path = Path(path)
    fast = _tokenizer(vocab_size, [*SPECIAL, "<extra_id_0>"])
    fast.save_pretrained(path)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(fast),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        decoder_start_token_id=fast.pad_token_id,
        initializer_factor=1.0,
    )
    T5ForConditionalGeneration(config).save_pretrained(path)
    return path


def _tokenizer(vocab_size: int, special: list[str]):
    """A byte-level BPE tokenizer trained on :data:`CORPUS`, ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def make_random_adapter(lm: str | Path, path: str | Path, *, scale: float = 20.0) -> Path:
    """A LoRA adapter on ``lm`` with random, scaled-up B matrices: unlike peft's default
    (B = 0) it really changes the model's answers. Saved to ``path``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(lm, local_files_only=True)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"])
    lora.init_lora_weights = False
    model = get_peft_model(base, lora)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.mul_(scale)
    model.save_pretrained(path)
    return Path(path)
