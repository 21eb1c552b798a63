"""Multiple-choice samples and tasks: the input every backend scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

Metric = Literal["acc", "acc_norm"]


def completion_length(continuation: str) -> int:
    """The length `acc_norm` divides by, as lm-eval counts it: the choice's characters without
    the target delimiter (the leading space) that the continuation carries; at least 1."""
    return max(len(continuation) - continuation.startswith(" "), 1)


@dataclass(frozen=True)
class MCSample:
    """One multiple-choice question as lm-evaluation-harness sees it.

    `context` is the full prompt up to the answer; each entry of `choices` is the continuation
    whose log-likelihood is scored (lm-eval convention: it starts with a space). Tasks such as
    Winogrande vary the context per option instead: then `choice_contexts` holds one context per
    option and every option scores the same continuation `choices[0]`. Classifier backends read
    `inputs` (an image or feature vector) instead of text; `choices` then names the classes.
    """

    sample_id: str
    context: str
    choices: tuple[str, ...]
    gold: int
    group: str | None = None
    choice_contexts: tuple[str, ...] | None = None
    inputs: np.ndarray | None = field(default=None, compare=False)

    @property
    def n_options(self) -> int:
        return len(self.choice_contexts) if self.choice_contexts else len(self.choices)

    def requests(self) -> list[tuple[str, str]]:
        """The (context, continuation) pairs to score, one per option."""
        if self.choice_contexts:
            return [(ctx, self.choices[0]) for ctx in self.choice_contexts]
        return [(self.context, choice) for choice in self.choices]


@dataclass(frozen=True)
class Task:
    """A named list of multiple-choice samples and the metric that turns scores into answers."""

    name: str
    samples: tuple[MCSample, ...]
    metric: Metric = "acc"

    @property
    def sample_ids(self) -> list[str]:
        return [s.sample_id for s in self.samples]

    def subset(self, sample_ids: Sequence[str]) -> "Task":
        """The task restricted to `sample_ids`, in that order."""
        by_id = {s.sample_id: s for s in self.samples}
        missing = [sid for sid in sample_ids if sid not in by_id]
        if missing:
            raise KeyError(f"task '{self.name}': sample ids not found: {missing[:5]}")
        return Task(self.name, tuple(by_id[sid] for sid in sample_ids), self.metric)

    def choice_scores(self, loglikelihoods: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per-choice scores under the metric: raw sums (`acc`) or per character (`acc_norm`)."""
        if self.metric == "acc":
            return [np.asarray(ll, dtype=np.float64) for ll in loglikelihoods]
        return [np.asarray(ll, dtype=np.float64)
                / np.array([completion_length(cont) for _, cont in s.requests()])
                for ll, s in zip(loglikelihoods, self.samples)]
