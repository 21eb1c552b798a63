"""Hugging Face transformers causal LMs: per-option log-likelihoods, lm-eval style.

Options (`ModelSpec.options`):
    batch_size (8): token sequences per forward pass.
    max_length: longest input in tokens (default: the model's context size); longer inputs are
        cut on the left, as lm-eval does.
    dtype ("auto"): float32 | float16 | bfloat16 | auto (float32 on CPU, the checkpoint's dtype
        on GPU).
    add_bos_token (False): encode with the tokenizer's special tokens (lm-eval's flag, needed
        for e.g. Gemma).
    revision: model revision on the Hub.

Requests whose model inputs coincide, or where one input is a prefix of another, share one
sequence: a causal LM's logits at a position depend only on the tokens before it. Letter-style
questions (" A" / " B" / ... after "Answer:") thus cost one sequence per question.
"""

from __future__ import annotations

import gc
import inspect
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from disco_ray.backends.base import ModelSpec, register_backend
from disco_ray.backends.encoding import (TokenPair, prefix_token, sample_token_pairs,
                                         tokenizer_encoder)
from disco_ray.tasks.base import MCSample

OPTIONS = ("batch_size", "revision", "dtype", "max_length", "add_bos_token")

DEFAULT_MAX_LENGTH = 2048
DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Slot:
    """Where one request is read: row `row`, positions start..start+len(tokens)-1 predict
    `tokens` (the continuation)."""

    row: int
    start: int
    tokens: tuple[int, ...]


def plan_rows(pairs: Sequence[TokenPair], max_length: int
              ) -> tuple[list[tuple[int, ...]], list[Slot]]:
    """Model input rows and, per request, the slot that scores it.

    Each request's input is (context + continuation) cut on the left to `max_length + 1`
    tokens, minus the last token. Identical inputs are merged, and an input that is a prefix of
    another is read from the longer one. (In sorted order, a sequence that is a prefix of any
    other is a prefix of its successor, so one backward pass finds every host.)
    """
    inputs = []
    for ctx, cont in pairs:
        if not ctx:
            raise ValueError("a context encodes to no tokens. Fix: give every sample a context")
        if len(cont) > max_length:
            raise ValueError(f"a continuation has {len(cont)} tokens, more than max_length="
                             f"{max_length}. Fix: raise max_length or shorten the choices")
        inputs.append(tuple((list(ctx) + list(cont))[-(max_length + 1):-1]))
    unique = sorted(set(inputs))
    host = list(range(len(unique)))
    for i in range(len(unique) - 2, -1, -1):
        if unique[i + 1][:len(unique[i])] == unique[i]:
            host[i] = host[i + 1]
    row_of_host = {h: r for r, h in enumerate(sorted(set(host)))}
    row_of_input = {seq: row_of_host[host[i]] for i, seq in enumerate(unique)}
    rows = [unique[h] for h in sorted(set(host))]
    slots = [Slot(row_of_input[inp], len(inp) - len(cont), tuple(cont))
             for inp, (_, cont) in zip(inputs, pairs)]
    return rows, slots


class HFBackend:
    """A transformers causal LM that scores (context, continuation) pairs."""

    def __init__(self, spec: ModelSpec) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()   # one bar per actor floods the driver's log
        options = spec.options
        self.name = spec.name
        self.device = _device(spec.device, torch)
        self.batch_size = int(options.get("batch_size", 8))
        revision = options.get("revision")
        self.tokenizer = AutoTokenizer.from_pretrained(
            spec.path, trust_remote_code=spec.trust_remote_code, revision=revision)
        self.model = AutoModelForCausalLM.from_pretrained(
            spec.path, trust_remote_code=spec.trust_remote_code, revision=revision,
            dtype=_dtype(options.get("dtype", "auto"), self.device, torch)).to(self.device)
        self.model.eval()
        self.max_length = int(options.get("max_length")
                              or _context_size(self.model, self.tokenizer))
        self._encode = tokenizer_encoder(self.tokenizer, bool(options.get("add_bos_token")))
        self._pad_id = _pad_id(self.tokenizer)
        self._can_trim = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self.score_pairs([([self._pad_id], [self._pad_id])])  # warm-up: first-call set-up costs

    def loglikelihoods(self, samples: Sequence[MCSample]) -> list[np.ndarray]:
        """Per sample, the summed log-probability of each option's continuation."""
        return self.loglikelihoods_and_greedy(samples)[0]

    def loglikelihoods_and_greedy(self, samples: Sequence[MCSample]
                                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per sample: option log-likelihoods (float64) and whether each option is the greedy
        continuation (every token the argmax)."""
        per_sample = sample_token_pairs(self._encode, samples, prefix_token(self.tokenizer))
        flat = [pair for pairs in per_sample for pair in pairs]
        ll, greedy = self.score_pairs(flat)
        bounds = np.cumsum([0] + [len(pairs) for pairs in per_sample])
        return ([ll[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
                [greedy[a:b] for a, b in zip(bounds[:-1], bounds[1:])])

    def score_pairs(self, pairs: Sequence[TokenPair]) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-probabilities and greedy flags of token-level (context, continuation)
        pairs."""
        rows, slots = plan_rows(pairs, self.max_length)
        by_row: dict[int, list[int]] = {}
        for i, slot in enumerate(slots):
            by_row.setdefault(slot.row, []).append(i)
        ll, greedy = np.zeros(len(slots)), np.zeros(len(slots), dtype=bool)
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r]))
        for first in range(0, len(order), self.batch_size):
            batch = order[first:first + self.batch_size]
            self._score_batch(rows, batch, [[slots[i] for i in by_row[r]] for r in batch],
                              [i for r in batch for i in by_row[r]], ll, greedy)
        return ll, greedy

    def _score_batch(self, rows: list[tuple[int, ...]], batch: list[int],
                     batch_slots: list[list[Slot]], slot_ids: list[int], ll: np.ndarray,
                     greedy: np.ndarray) -> None:
        """One forward pass over the rows in `batch`; fills `ll` and `greedy` at `slot_ids`."""
        import torch
        lengths = np.array([len(rows[r]) for r in batch])
        length = int(lengths.max())
        ids = np.full((len(batch), length), self._pad_id, dtype=np.int64)
        for b, r in enumerate(batch):
            ids[b, :lengths[b]] = rows[r]
        mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
        keep = max(length - min(s.start for s in slots) for slots in batch_slots)
        kwargs = {"logits_to_keep": keep} if self._can_trim else {}
        with torch.inference_mode():
            logits = self.model(input_ids=torch.from_numpy(ids).to(self.device),
                                attention_mask=torch.from_numpy(mask).to(self.device),
                                **kwargs).logits[:, -keep:]
            b_idx, pos, tok = (t.to(logits.device)
                               for t in _gather_index(batch_slots, length - keep))
            scored = logits[b_idx, pos].float()  # [continuation tokens, vocab]
            picked = scored.gather(-1, tok[:, None])[:, 0] - torch.logsumexp(scored, dim=-1)
            picked = picked.double().cpu().numpy()
            hits = (scored.argmax(dim=-1) == tok).cpu().numpy()
        offsets = np.cumsum([0] + [len(s.tokens) for slots in batch_slots for s in slots])[:-1]
        ll[slot_ids] = np.add.reduceat(picked, offsets)
        greedy[slot_ids] = np.logical_and.reduceat(hits, offsets)

    def close(self) -> None:
        """Drop the model and free accelerator memory."""
        import torch
        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _gather_index(batch_slots: list[list[Slot]], offset: int) -> tuple:
    """Batch, kept-position and token index tensors covering every continuation token."""
    import torch
    flat = [(b, slot) for b, slots in enumerate(batch_slots) for slot in slots]
    sizes = np.array([len(slot.tokens) for _, slot in flat])
    starts = np.repeat([slot.start - offset for _, slot in flat], sizes)
    within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    b_idx = np.repeat([b for b, _ in flat], sizes)
    tok = np.fromiter((t for _, slot in flat for t in slot.tokens), dtype=np.int64,
                      count=int(sizes.sum()))
    return (torch.from_numpy(b_idx), torch.from_numpy(starts + within), torch.from_numpy(tok))


def _device(requested: str, torch) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{requested}' requested but CUDA is not available. "
                           "Fix: use device 'cpu' or 'auto', or run on a GPU node")
    return requested


def _dtype(name: str, device: str, torch):
    if name not in DTYPES:
        raise ValueError(f"option 'dtype': '{name}' is unknown. Fix: use one of {DTYPES}")
    if name == "auto":
        return torch.float32 if device == "cpu" else "auto"
    return getattr(torch, name)


def _context_size(model, tokenizer) -> int:
    """The model's context window, found as lm-eval does; 2048 when nothing says."""
    for attr in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
        value = getattr(model.config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 1_000_000 else DEFAULT_MAX_LENGTH


def _pad_id(tokenizer) -> int:
    for attr in ("pad_token_id", "eos_token_id", "unk_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return value
    return 0


@register_backend("hf", OPTIONS)
def load_hf_backend(spec: ModelSpec) -> HFBackend:
    """Registry factory for `backend: hf`."""
    return HFBackend(spec)
