"""Tiny GPT-2 models with a character-level tokenizer, built in code (nothing downloaded).

For tests, smoke runs and Ray examples: `build_tiny_gpt2(path, seed)` writes a model directory
that `AutoModelForCausalLM` / `AutoTokenizer` (and so the `hf` and `vllm` backends) can load.
Different seeds give different, deterministic weights.
"""

from __future__ import annotations

import string
from pathlib import Path

SPECIAL_TOKENS = ("<unk>", "<eos>", "<pad>")
CHARACTERS = tuple(c for c in string.printable if c not in "\x0b\x0c\r")


def char_tokenizer():
    """A fast tokenizer with one token per printable ASCII character (others map to <unk>)."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    # BPE without merges splits text into single characters, spaces included.
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>",
                                   bos_token="<eos>", eos_token="<eos>", pad_token="<pad>")


def build_tiny_gpt2(path: str | Path, seed: int = 0, n_layer: int = 2, n_head: int = 2,
                    n_embd: int = 32, n_positions: int = 512,
                    initializer_range: float = 0.2) -> Path:
    """Write a randomly initialised GPT-2 and its character tokenizer to `path`; return it.

    `initializer_range` is larger than GPT-2's 0.02 so that models are opinionated: their
    answer distributions differ from model to model, as a DISCO population needs.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    path = Path(path)
    tokenizer = char_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd,
                        n_layer=n_layer, n_head=n_head, initializer_range=initializer_range,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()   # a one-shard "Writing model shards" bar per tiny model
    try:
        model.save_pretrained(path)
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(path)
    return path
