"""Token-level requests for language-model backends, with lm-evaluation-harness's conventions."""

from __future__ import annotations

from typing import Callable, Sequence

from disco_ray.tasks.base import MCSample

EncodeBatch = Callable[[Sequence[str]], list[list[int]]]
TokenPair = tuple[list[int], list[int]]
CHUNK_SAMPLES = 2048   # samples tokenised per batched call (bounds the ids held at once)


def split_request(context: str, continuation: str) -> tuple[str, str]:
    """lm-eval's `_encode_pair` split: trailing spaces of the context move onto the
    continuation."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        return context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


def sample_token_pairs(encode: EncodeBatch, samples: Sequence[MCSample],
                       prefix_token_id: int | None) -> list[list[TokenPair]]:
    """Per sample, per option, the (context ids, continuation ids) to score, as lm-eval's
    `_encode_pair` builds them.

    The pair is encoded whole and the continuation is the tail after the context's tokens, so
    merges across the boundary follow the tokenizer. An empty context becomes the prefix token
    (BOS, or EOS without one). Texts are tokenised in batched calls, each distinct text once.
    """
    pairs: list[list[TokenPair]] = []
    for first in range(0, len(samples), CHUNK_SAMPLES):
        chunk = samples[first:first + CHUNK_SAMPLES]
        requests = [[split_request(ctx, cont) for ctx, cont in sample.requests()]
                    for sample in chunk]
        texts = sorted({text for option_requests in requests for ctx, cont in option_requests
                        for text in ((ctx, ctx + cont) if ctx else (cont,))})
        ids = dict(zip(texts, encode(texts)))
        for sample, option_requests in zip(chunk, requests):
            option_pairs = [_token_pair(ids, ctx, cont, prefix_token_id)
                            for ctx, cont in option_requests]
            if any(not cont for _, cont in option_pairs):
                raise ValueError(f"sample '{sample.sample_id}': an option encodes to no tokens. "
                                 "Fix: give every choice a non-empty continuation")
            pairs.append(option_pairs)
    return pairs


def _token_pair(ids: dict[str, list[int]], context: str, continuation: str,
                prefix_token_id: int | None) -> TokenPair:
    if not context:
        if prefix_token_id is None:
            raise ValueError("empty context and the tokenizer has neither a BOS nor an EOS "
                             "token. Fix: give every sample a non-empty context")
        return [prefix_token_id], ids[continuation]
    context_ids = ids[context]
    return context_ids, ids[context + continuation][len(context_ids):]


def prefix_token(tokenizer) -> int | None:
    """lm-eval's prefix token for empty contexts: BOS if the tokenizer has one, else EOS."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return bos if bos is not None else getattr(tokenizer, "eos_token_id", None)


def tokenizer_encoder(tokenizer, add_bos_token: bool = False) -> EncodeBatch:
    """Texts -> ids (one batched tokenizer call) without special tokens (lm-eval default), or
    with them (`add_bos_token`)."""
    def encode(texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        return [list(ids) for ids in
                tokenizer(list(texts), add_special_tokens=add_bos_token)["input_ids"]]
    return encode
