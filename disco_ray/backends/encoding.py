"""Token-level requests for language-model backends, with lm-evaluation-harness's conventions."""

from __future__ import annotations

from typing import Callable, Sequence

from disco_ray.tasks.base import MCSample

Encode = Callable[[str], list[int]]
TokenPair = tuple[list[int], list[int]]


def encode_pair(encode: Encode, context: str, continuation: str,
                prefix_token_id: int | None) -> TokenPair:
    """(context ids, continuation ids) as lm-eval's `_encode_pair` builds them.

    Trailing spaces of the context move onto the continuation; the pair is encoded whole and the
    continuation is the tail after the context's tokens, so merges across the boundary follow
    the tokenizer. An empty context becomes the prefix token (BOS, or EOS without one).
    """
    if not context:
        if prefix_token_id is None:
            raise ValueError("empty context and the tokenizer has neither a BOS nor an EOS "
                             "token. Fix: give every sample a non-empty context")
        return [prefix_token_id], encode(continuation)
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    context_ids = encode(context)
    return context_ids, encode(context + continuation)[len(context_ids):]


def sample_token_pairs(encode: Encode, samples: Sequence[MCSample],
                       prefix_token_id: int | None) -> list[list[TokenPair]]:
    """Per sample, per option, the (context ids, continuation ids) to score."""
    pairs = []
    for sample in samples:
        option_pairs = [encode_pair(encode, ctx, cont, prefix_token_id)
                        for ctx, cont in sample.requests()]
        if any(not cont for _, cont in option_pairs):
            raise ValueError(f"sample '{sample.sample_id}': an option encodes to no tokens. "
                             "Fix: give every choice a non-empty continuation")
        pairs.append(option_pairs)
    return pairs


def prefix_token(tokenizer) -> int | None:
    """lm-eval's prefix token for empty contexts: BOS if the tokenizer has one, else EOS."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return bos if bos is not None else getattr(tokenizer, "eos_token_id", None)


def tokenizer_encoder(tokenizer, add_bos_token: bool = False) -> Encode:
    """Text -> ids without special tokens (lm-eval default), or with them (`add_bos_token`)."""
    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=add_bos_token)["input_ids"])
    return encode
