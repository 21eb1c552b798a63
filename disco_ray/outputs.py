"""Model outputs as data: M models x N samples, probabilities or correctness.

`ModelOutputs` is the one type every stage consumes. It is validated here, at the boundary, so
that downstream code can trust shapes, ids and value ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

PROB_TOLERANCE = 1e-3


class OutputsError(ValueError):
    """Bad model outputs: the message names the source, the field and the fix."""


def _fail(source: str, field_name: str, problem: str, fix: str) -> OutputsError:
    return OutputsError(f"{source}: field '{field_name}': {problem}. Fix: {fix}")


@dataclass(frozen=True)
class ModelOutputs:
    """Per-sample outputs of M models on N samples.

    Attributes:
        model_ids: [M] unique model names.
        sample_ids: [N] unique sample ids, shared by every model.
        correct: [M, N] correctness in [0, 1] (0/1 or soft); NaN = missing (counted wrong).
        probs: optional [M, N, C] probabilities over answer choices; padded choices hold 0.
        gold: optional [N] index of the correct choice.
        groups: optional [N] subject / category of each sample.
        full_score: optional [M] score on the complete benchmark, as a fraction.
        source: where the data came from, used in error messages.
    """

    model_ids: np.ndarray
    sample_ids: np.ndarray
    correct: np.ndarray
    probs: np.ndarray | None = None
    gold: np.ndarray | None = None
    groups: np.ndarray | None = None
    full_score: np.ndarray | None = None
    source: str = "<in-memory outputs>"
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        src = self.source
        for name in ("model_ids", "sample_ids"):
            ids = np.asarray(getattr(self, name))
            if ids.ndim != 1:
                raise _fail(src, name, f"has shape {ids.shape}, expected a list of ids",
                            "store a 1-D array of names")
            object.__setattr__(self, name, ids.astype(str))
        object.__setattr__(self, "correct", _numeric(src, "correct", self.correct, np.float32))
        m, n = len(self.model_ids), len(self.sample_ids)
        if m == 0 or n == 0:
            raise _fail(src, "model_ids" if m == 0 else "sample_ids", "is empty",
                        "give outputs of at least one model on at least one sample")
        _check_unique(src, "model_ids", self.model_ids)
        _check_unique(src, "sample_ids", self.sample_ids)
        if self.correct.shape != (m, n):
            raise _fail(src, "correct", f"has shape {self.correct.shape}, expected ({m}, {n})",
                        "give one value per (model, sample)")
        unscored = np.flatnonzero(np.isnan(self.correct).all(axis=1))
        if unscored.size:
            raise _fail(src, "correct", f"is NaN (missing) on every sample for {unscored.size} "
                        f"model(s), e.g. '{self.model_ids[unscored[0]]}': nothing to predict "
                        "from", "give each model at least one outcome, or leave such models out")
        finite = self.correct[~np.isnan(self.correct)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise _fail(src, "correct", "has values outside [0, 1]",
                        "store correctness as 0/1 or a probability of being right")
        if self.probs is not None:
            object.__setattr__(self, "probs", np.asarray(self.probs, dtype=np.float32))
            _check_probs(src, self.probs, m, n)
        for name, dtype in (("gold", np.int64), ("full_score", np.float64)):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _numeric(src, name, value, dtype))
        if self.groups is not None:
            object.__setattr__(self, "groups", np.asarray(self.groups).astype(str))
        for name, size in (("gold", n), ("groups", n), ("full_score", m)):
            value = getattr(self, name)
            if value is not None and value.shape != (size,):
                raise _fail(src, name, f"has shape {value.shape}, expected ({size},)",
                            f"give one {name} value per {'sample' if size == n else 'model'}")
        if self.gold is not None:
            _check_gold(src, self.gold, None if self.probs is None else self.probs.shape[2])
        if self.full_score is not None and not np.all(np.isfinite(self.full_score)):
            raise _fail(src, "full_score", "has NaN or infinite values",
                        "give every model's full-benchmark score, or leave the field out")
        if self.full_score is not None and (self.full_score.min(initial=0) < 0
                                            or self.full_score.max(initial=0) > 1):
            raise _fail(src, "full_score", f"has values outside [0, 1] (largest "
                        f"{self.full_score.max():g})", "store scores as fractions (a score in "
                        "percent divided by 100)")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_probs(cls, model_ids: Sequence[str], sample_ids: Sequence[str], probs: np.ndarray,
                   gold: np.ndarray, **kwargs) -> "ModelOutputs":
        """Build outputs from [M, N, C] probabilities and gold answers; correctness = argmax."""
        probs = np.asarray(probs, dtype=np.float32)
        gold = np.asarray(gold, dtype=np.int64)
        correct = (probs.argmax(axis=2) == gold[None, :]).astype(np.float32)
        return cls(model_ids, sample_ids, correct, probs=probs, gold=gold, **kwargs)

    # -- shape ----------------------------------------------------------------------------------
    @property
    def n_models(self) -> int:
        return len(self.model_ids)

    @property
    def n_samples(self) -> int:
        return len(self.sample_ids)

    @property
    def has_probs(self) -> bool:
        return self.probs is not None

    # -- views ----------------------------------------------------------------------------------
    def take_models(self, index: np.ndarray | Sequence[int]) -> "ModelOutputs":
        """The outputs of a subset of models (all samples)."""
        index = np.asarray(index, dtype=np.int64)
        return replace(
            self, model_ids=self.model_ids[index], correct=self.correct[index],
            probs=None if self.probs is None else self.probs[index],
            full_score=None if self.full_score is None else self.full_score[index])

    def take_samples(self, index: np.ndarray | Sequence[int]) -> "ModelOutputs":
        """The outputs on a subset of samples; `full_score` still refers to the full benchmark."""
        index = np.asarray(index, dtype=np.int64)
        return replace(
            self, sample_ids=self.sample_ids[index], correct=self.correct[:, index],
            probs=None if self.probs is None else self.probs[:, index],
            gold=None if self.gold is None else self.gold[index],
            groups=None if self.groups is None else self.groups[index],
            full_score=self.scores())

    def with_choices(self, n_choices: int) -> "ModelOutputs":
        """The same outputs with `probs` padded by zero-probability choices to `n_choices` (a
        file holding only some samples may not reach the benchmark's largest choice count)."""
        pad = n_choices - self.probs.shape[2]
        return replace(self, probs=np.pad(self.probs, ((0, 0), (0, 0), (0, pad))))

    def sample_index(self, sample_ids: Sequence[str], what: str = "anchor") -> np.ndarray:
        """Positions of `sample_ids` in this data; a clear error names the missing ones."""
        position = {sid: i for i, sid in enumerate(self.sample_ids)}
        missing = [sid for sid in sample_ids if sid not in position]
        if missing:
            raise _fail(self.source, "sample_ids",
                        f"{len(missing)} {what} sample(s) are missing, e.g. {missing[:5]}",
                        f"run the model on every {what} sample listed in the condensed benchmark")
        return np.array([position[sid] for sid in sample_ids], dtype=np.int64)

    # -- derived values -------------------------------------------------------------------------
    def correct_filled(self) -> np.ndarray:
        """[M, N] correctness with missing values counted as wrong."""
        return np.nan_to_num(self.correct, nan=0.0)

    def scores(self) -> np.ndarray:
        """Each model's full-benchmark score: given, or computed on these samples.

        Computed scores are the mean over groups of per-group accuracy when groups are known
        (MMLU's convention), the plain mean otherwise.
        """
        if self.full_score is not None:
            return self.full_score
        return group_mean(self.correct_filled(), self.groups)

    def distributions(self) -> np.ndarray:
        """[M, N, C] distributions for disagreement: probabilities, or [wrong, right] outcomes."""
        if self.probs is not None:
            return self.probs
        c = self.correct_filled()
        return np.stack([1.0 - c, c], axis=2).astype(np.float32)

    def signature(self, sample_index: np.ndarray) -> np.ndarray:
        """[M, k*C] signature on the given samples: probabilities if present, else outcomes."""
        if self.probs is not None:
            return self.probs[:, sample_index].reshape(self.n_models, -1).astype(np.float64)
        return self.correct_filled()[:, sample_index].astype(np.float64)


def group_mean(values: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Mean over the last axis, as the mean of per-group means when groups are given."""
    if groups is None:
        return values.mean(axis=-1).astype(np.float64)
    labels, inverse = np.unique(groups, return_inverse=True)
    per_group = np.stack([values[..., inverse == g].mean(axis=-1) for g in range(len(labels))], -1)
    return per_group.mean(axis=-1).astype(np.float64)


def _numeric(source: str, name: str, value, dtype: type) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise _fail(source, name, f"is not numeric ({err})",
                    f"store {name} as numbers") from err


def _check_gold(source: str, gold: np.ndarray, n_choices: int | None) -> None:
    """Gold answers index the choices from 0 (a 1-based index is the usual slip)."""
    top = "" if n_choices is None else f"..{n_choices - 1}"
    if gold.size and (gold.min() < 0 or (n_choices is not None and gold.max() >= n_choices)):
        raise _fail(source, "gold", f"holds {gold.min()}..{gold.max()}, outside the choice "
                    f"indices 0{top}", "give the index of the right choice, counted from 0")


def _check_unique(source: str, name: str, ids: np.ndarray) -> None:
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != len(ids):
        dup = unique[counts > 1][:5].tolist()
        raise _fail(source, name, f"has duplicate ids, e.g. {dup}",
                    "give every model and sample a unique id (deduplicate or rename)")


def _check_probs(source: str, probs: np.ndarray, m: int, n: int) -> None:
    if probs.ndim != 3 or probs.shape[:2] != (m, n):
        raise _fail(source, "probs", f"has shape {probs.shape}, expected ({m}, {n}, C)",
                    "give one probability vector per (model, sample), padded with 0")
    if not np.all(np.isfinite(probs)):
        raise _fail(source, "probs", "has NaN or infinite values",
                    "re-run the model on those samples; in an .npz, a sample a model was not run"
                    " on may hold NaN in every choice (read as missing); or drop `probs` and keep"
                    " `correct` alone (NaN there counts as a missing outcome)")
    if probs.min() < 0:
        raise _fail(source, "probs", "has negative values",
                    "store probabilities (softmax of log-likelihoods), not log-probabilities")
    totals = probs.sum(axis=2)
    worst = float(np.abs(totals - 1.0).max())
    if worst > PROB_TOLERANCE:
        raise _fail(source, "probs", f"rows do not sum to 1 (worst off by {worst:.3g})",
                    "normalise each sample's choice probabilities (softmax over the options)")
