"""The condensed benchmark: anchors, the references' outputs on them, and a fitted metamodel.

`CondensedBenchmark.predict` is the online phase: a target's outputs on the anchors -> anchor
features -> the metamodel's score and interval -> the population check -> `Prediction`.
`search.condense` builds a benchmark (the offline phase); `io.benchmark` saves and loads it
(loading re-fits the metamodel deterministically).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from disco_ray.design import AnchorDesign, CondenseSettings
from disco_ray.metamodels import ReferenceContext, describe_metamodel, make_metamodel
from disco_ray.outputs import ModelOutputs, OutputsError
from disco_ray.signatures import anchor_features
from disco_ray.uncertainty import PopulationCheck, at_frontier


@dataclass(frozen=True)
class Prediction:
    """A predicted full-benchmark score with its interval and population check.

    `reason` says why a target is out of population (empty when it is not); `at_frontier` marks a
    target in population whose interval reaches above the strongest reference's score
    (`report.tables.FRONTIER_NOTE`).
    """

    model_id: str
    score: float
    lower: float
    upper: float
    anchor_accuracy: float
    out_of_population: bool
    reason: str = ""
    at_frontier: bool = False


@dataclass
class CondensedBenchmark:
    """Anchors, reference outputs on them, and the chosen configuration.

    Attributes:
        settings: the offline-phase settings.
        references: reference models' outputs on the anchors only, with their full scores.
        choice: the configuration chosen by CV: `design` (an `AnchorDesign` as JSON),
            `metamodel` (its spec) and `cv_mae`.
        context: what the metamodel fits on beyond the anchor features (`ReferenceContext`).
        disagreement: {sample_id: score} over the whole benchmark (for reports).
        data_hash: sha256 of the reference outputs the benchmark was condensed from.
        fitted: the fitted metamodel, when the caller has it (else it is fitted here).
    """

    settings: CondenseSettings
    references: ModelOutputs
    choice: dict
    context: ReferenceContext
    disagreement: dict[str, float] = field(default_factory=dict)
    data_hash: str = ""
    fitted: object | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Fit the chosen metamodel (unless `fitted`) and the population check."""
        X = anchor_features(self.references, np.arange(self.references.n_samples))
        y = self.references.scores()
        if self.fitted is None:
            self.fitted = make_metamodel(self.choice["metamodel"], self.settings.seed,
                                         self.settings.cv_folds, self.settings.interval
                                         ).fit(X, y, self.context)
        self._population = PopulationCheck.fit(X, y)

    @property
    def metamodel(self):
        """The fitted metamodel (`predict`, `predict_interval`)."""
        return self.fitted

    @property
    def design(self) -> AnchorDesign:
        """How the anchors were drawn."""
        return AnchorDesign.from_json(self.choice["design"])

    @property
    def anchor_ids(self) -> list[str]:
        return self.references.sample_ids.tolist()

    @property
    def k(self) -> int:
        return self.references.n_samples

    def describe(self) -> str:
        """One line: the anchors, how they were chosen, the metamodel and its CV error."""
        return (f"{self.k} anchors ({self.design.name}), metamodel "
                f"{describe_metamodel(self.choice['metamodel'])}, reference CV MAE "
                f"{100 * self.choice['cv_mae']:.2f} pp")

    def predict(self, outputs: ModelOutputs) -> list[Prediction]:
        """Predict every model's full score from its outputs on (at least) the anchors (the
        anchor accuracy rounded to 1e-6: the features are float32)."""
        anchors = outputs.sample_index(self.anchor_ids)
        X = anchor_features(self._compatible(outputs), anchors)
        scores = self.fitted.predict(X)
        reasons = self._population.reasons(X, scores)
        lower, upper = self.fitted.predict_interval(X, np.array([bool(r) for r in reasons]))
        best = self._population.score_range[1]
        return [Prediction(str(model_id), float(score), float(low), float(high),
                           round(float(acc), 6), bool(why), why,
                           not why and bool(at_frontier(high, best)))
                for model_id, score, low, high, acc, why in zip(
                    outputs.model_ids, scores, lower, upper, X[:, -1], reasons)]

    def _compatible(self, outputs: ModelOutputs) -> ModelOutputs:
        """`outputs` in the references' form: a target with fewer answer choices (it may hold
        only the anchors) gets zero-probability ones added; more choices or another form is an
        error."""
        if self.references.has_probs != outputs.has_probs:
            kind = "per-choice probabilities" if self.references.has_probs else "0/1 outcomes"
            raise OutputsError(f"{outputs.source}: field 'probs': the condensed benchmark was "
                               f"built from {kind}. Fix: give the target's outputs in the same "
                               "form")
        self._check_same_metric(outputs)
        if not outputs.has_probs:
            return outputs
        have, need = outputs.probs.shape[2], self.references.probs.shape[2]
        if have > need:
            raise OutputsError(f"{outputs.source}: field 'probs' has {have} choices, the "
                               f"references {need}. Fix: score the same answer options as the "
                               "reference models")
        return outputs.with_choices(need) if have < need else outputs

    def _check_same_metric(self, outputs: ModelOutputs) -> None:
        """Targets read from lm-eval logs must be read with the references' metric."""
        mine = self.references.meta.get("lm_eval_metric")
        theirs = outputs.meta.get("lm_eval_metric")
        if mine and theirs and mine != theirs:
            raise OutputsError(f"{outputs.source}: the lm-eval logs were read with metric "
                               f"{theirs!r}, the references with {mine!r}. Fix: read them with "
                               f"--metric {mine} (Python: read_outputs(..., metric={mine!r}))")


def data_hash(outputs: ModelOutputs) -> str:
    """sha256 of everything the offline phase reads from the reference outputs."""
    digest = hashlib.sha256()
    for array in (outputs.model_ids, outputs.sample_ids, outputs.correct, outputs.probs,
                  outputs.full_score, outputs.gold, outputs.groups):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
