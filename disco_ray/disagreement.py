"""Disagreement scores (PDS, JSD) as a mergeable reduction over models.

`DisagreementState` holds only per-sample sums and maxima (O(N*C) memory), so the same code scores
an in-memory array, a model-by-model stream, or blocks reduced in parallel and merged (Ray Data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ScoreKind = Literal["pds", "jsd"]
SCORE_KINDS: tuple[str, ...] = ("pds", "jsd")


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along `axis`, with 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=axis)


@dataclass
class DisagreementState:
    """Partial reduction over models: count, sum of p, sum of H(p), running max of p.

    Attributes:
        n_models: models accumulated so far.
        prob_sum: [N, C] sum over models of p[m, i, :].
        entropy_sum: [N] sum over models of H(p[m, i, :]).
        prob_max: [N, C] max over models of p[m, i, :].
    """

    n_models: int
    prob_sum: np.ndarray
    entropy_sum: np.ndarray
    prob_max: np.ndarray

    @classmethod
    def empty(cls, n_samples: int, n_choices: int) -> "DisagreementState":
        """The identity element of `merge`."""
        return cls(0, np.zeros((n_samples, n_choices)), np.zeros(n_samples),
                   np.zeros((n_samples, n_choices)))

    @classmethod
    def of(cls, probs: np.ndarray) -> "DisagreementState":
        """The state of a block of models' probabilities, shape [m, N, C] (or [N, C] for one)."""
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim == 2:
            probs = probs[None]
        return cls(probs.shape[0], probs.sum(axis=0), entropy(probs).sum(axis=0),
                   probs.max(axis=0))

    def add(self, probs: np.ndarray) -> "DisagreementState":
        """Accumulate more models' probabilities; returns the merged state."""
        return self.merge(DisagreementState.of(probs))

    def merge(self, other: "DisagreementState") -> "DisagreementState":
        """Associative, commutative combination of two partial states."""
        if self.prob_sum.shape != other.prob_sum.shape:
            raise ValueError(f"cannot merge disagreement states of shapes {self.prob_sum.shape} "
                             f"and {other.prob_sum.shape}: they cover different samples/choices")
        return DisagreementState(self.n_models + other.n_models, self.prob_sum + other.prob_sum,
                                 self.entropy_sum + other.entropy_sum,
                                 np.maximum(self.prob_max, other.prob_max))

    def scores(self, kind: ScoreKind) -> np.ndarray:
        """Per-sample disagreement: PDS = sum_c max_m p; JSD = H(mean p) - mean H(p)."""
        if self.n_models == 0:
            raise ValueError("no models accumulated: disagreement needs at least one model")
        if kind == "pds":
            return self.prob_max.sum(axis=1)
        if kind == "jsd":
            n = self.n_models
            return np.maximum(entropy(self.prob_sum / n) - self.entropy_sum / n, 0.0)
        raise ValueError(f"unknown disagreement score '{kind}'. Fix: use one of {SCORE_KINDS}")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays, for shipping between processes or saving as npz."""
        return {"n_models": np.array(self.n_models), "prob_sum": self.prob_sum,
                "entropy_sum": self.entropy_sum, "prob_max": self.prob_max}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "DisagreementState":
        return cls(int(arrays["n_models"]), np.asarray(arrays["prob_sum"], dtype=np.float64),
                   np.asarray(arrays["entropy_sum"], dtype=np.float64),
                   np.asarray(arrays["prob_max"], dtype=np.float64))


def guiding_models(n_models: int, guiding: int | None, seed: int) -> np.ndarray:
    """Indices of the guiding subset: `guiding` models drawn at random, or all of them."""
    if guiding is None or guiding >= n_models:
        return np.arange(n_models)
    if guiding < 2:
        raise ValueError(f"guiding={guiding}: disagreement needs at least 2 guiding models")
    return np.sort(np.random.default_rng(seed).choice(n_models, size=guiding, replace=False))


def disagreement_scores(distributions: np.ndarray, kind: ScoreKind, guiding: int | None = None,
                        seed: int = 0, block_size: int = 256) -> np.ndarray:
    """Per-sample disagreement of [M, N, C] distributions, accumulated in model blocks."""
    chosen = guiding_models(distributions.shape[0], guiding, seed)
    state = DisagreementState.empty(distributions.shape[1], distributions.shape[2])
    for start in range(0, len(chosen), block_size):
        state = state.add(distributions[chosen[start:start + block_size]])
    return state.scores(kind)
