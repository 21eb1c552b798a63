"""The condensed benchmark: anchors + reference signatures + a metamodel that re-fits on load.

`condense(references, settings)` runs the offline phase: disagreement over guiding models, anchor
selection, metamodel choice by cross-validation over the references (with few references, the
anchor design by a nested one: `cross_validated_error`), split-conformal intervals and an
out-of-population check. `CondensedBenchmark.predict` is the online phase. A saved benchmark
is a directory of JSON + Parquet + npz (no pickle, `disco_ray.io.benchmark`); loading it re-fits
deterministically.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
from sklearn.model_selection import KFold

from disco_ray.disagreement import disagreement_scores
from disco_ray.metamodels import (StackedMetamodel, choose_metamodel, describe_metamodel,
                                  fit_with_out_of_fold, mix_stacks)
from disco_ray.outputs import ModelOutputs, OutputsError
from disco_ray.selection import cluster_k, select_anchors
from disco_ray.signatures import anchor_features
from disco_ray.uncertainty import (OOD_WIDENING, ExtrapolationInterval, PopulationCheck,
                                   at_frontier, conformal_halfwidth)

MIN_REFERENCES = 3


@dataclass(frozen=True)
class CondenseSettings:
    """Every setting of the offline phase; lists are candidates chosen by CV on references.

    Attributes:
        k: number of anchors.
        score: disagreement score, `pds` or `jsd`.
        selection: `top`, `stratified` (by group), `random` or `cluster` (k-means, weighted).
        candidates: optional selection candidates chosen by CV on references, each `random`,
            `cluster`, `top-pds`, `top-jsd`, `stratified-pds` or `stratified-jsd`; empty = use
            `selection` and `score`. A disagreement score that is degenerate on the references
            (PDS on 0/1 outcomes: most samples tie at the maximum) is skipped.
        guiding: candidate guiding-subset sizes (None = every reference model).
        metamodels: candidate metamodel specs (see `metamodels.make_metamodel`).
        cv_folds: folds of the cross-validation over reference models.
        interval: coverage of the prediction intervals.
        seed: seeds the guiding subset, random selection, CV and the metamodel.
        nested_below: with fewer reference models than this, selection candidates are compared
            by a nested CV (each fold's models predicted by a benchmark condensed on the other
            folds, its anchors chosen there too). Validated on the models that chose them,
            anchors chosen from the references' outcomes look better than random ones by
            0.4-0.5 pp more than they are at 28 models (RESULTS §1, session 11). It costs
            `cv_folds` condenses per candidate; 0 turns it off.
    """

    k: int = 100
    score: str = "pds"
    selection: str = "top"
    guiding: tuple[int | None, ...] = (None,)
    metamodels: tuple[dict, ...] = ({"regressor": "rf", "pca": 256},)
    cv_folds: int = 5
    interval: float = 0.9
    seed: int = 0
    candidates: tuple[str, ...] = ()
    nested_below: int = 100

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "CondenseSettings":
        data = dict(data)
        data["guiding"] = tuple(data["guiding"])
        data["metamodels"] = tuple(data["metamodels"])
        data["candidates"] = tuple(data.get("candidates", ()))
        return cls(**data)


class NoCandidateError(ValueError):
    """No selection candidate could draw its anchors from these references."""


@dataclass(frozen=True)
class Prediction:
    """A predicted full-benchmark score with its interval and population check.

    `reason` says why a target is out of population (empty when it is not); `at_frontier` marks a
    target in population whose interval reaches above the strongest reference's score
    (`uncertainty.FRONTIER_NOTE`).
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
        choice: the configuration chosen by CV (`guiding`, `metamodel`, `cv_mae`).
        disagreement: {sample_id: score} over the whole benchmark (for reports).
        data_hash: sha256 of the reference outputs the benchmark was condensed from.
    """

    settings: CondenseSettings
    references: ModelOutputs
    choice: dict
    disagreement: dict[str, float] = field(default_factory=dict)
    data_hash: str = ""
    fitted: tuple | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Fit the chosen metamodel (unless `fitted` = (model, out-of-fold predictions))."""
        X = anchor_features(self.references, np.arange(self.references.n_samples))
        y = self.references.scores()
        if self.fitted is None:
            self.fitted = fit_with_out_of_fold(self.choice["metamodel"], X, y,
                                               self.settings.cv_folds, self.settings.seed)
        self._metamodel, oof = self.fitted
        self._halfwidth = conformal_halfwidth(oof - y, self.settings.interval)
        self._population = PopulationCheck.fit(X, y)
        self._extrapolation = None
        self._spread_scale = None
        if isinstance(self._metamodel, StackedMetamodel):
            if self._metamodel.spread_oof_ is not None:
                # normalised conformal: |residual| / (IRT posterior spread of the score)
                self._spread_scale = conformal_halfwidth(
                    (self._metamodel.ood_oof_ - y) / self._metamodel.spread_oof_,
                    self.settings.interval)
            self._extrapolation = ExtrapolationInterval.fit(
                self._metamodel.ood_oof_ - y, self._metamodel.top_residuals_,
                self._metamodel.top_excess_, self.settings.interval,
                self._metamodel.ood_is_unbiased_mean_)

    @property
    def metamodel(self):
        """The fitted metamodel (a scikit-learn estimator)."""
        return self._metamodel

    @property
    def anchor_ids(self) -> list[str]:
        return self.references.sample_ids.tolist()

    @property
    def k(self) -> int:
        return self.references.n_samples

    def describe(self) -> str:
        """One line: the anchors, how they were chosen, the metamodel and its CV error."""
        return (f"{self.k} anchors ({selection_name(self.settings.to_json(), self.choice)}), "
                f"metamodel {describe_metamodel(self.choice['metamodel'])}, reference CV MAE "
                f"{100 * self.choice['cv_mae']:.2f} pp")

    def predict(self, outputs: ModelOutputs) -> list[Prediction]:
        """Predict every model's full score from its outputs on (at least) the anchors (the
        anchor accuracy rounded to 1e-6: the features are float32)."""
        anchors = outputs.sample_index(self.anchor_ids)
        outputs = self._compatible(outputs)
        X = anchor_features(outputs, anchors)
        scores, routed, spread = self._routed_scores(X)
        scores = np.clip(scores, 0.0, 1.0)   # a score is a fraction, even extrapolated
        reasons = self._population.reasons(X, scores)
        ood_half = self._out_of_population_halfwidth(scores, spread)
        best = self._population.score_range[1]
        result = []
        for model_id, score, acc, why, wide, far in zip(outputs.model_ids, scores, X[:, -1],
                                                        reasons, ood_half, routed):
            half = max(wide, self._halfwidth) if why or far else self._halfwidth
            upper = float(min(score + half, 1.0))
            result.append(Prediction(str(model_id), float(score), float(max(score - half, 0.0)),
                                     upper, round(float(acc), 6), bool(why), why,
                                     not why and bool(at_frontier(upper, best))))
        return result

    def _routed_scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(scores, routed, spread): with a `StackedMetamodel`, targets beyond the strongest
        references take the stack chosen by the extrapolation CV, by their probability of lying
        beyond (all of it when the anchor accuracy beats every reference's); weak ones never do
        (the in-population stack holds up better). `routed`: more than half routed; `spread`:
        the IRT spread of each target's anchors (None without a stack)."""
        if not isinstance(self._metamodel, StackedMetamodel):
            scores = self._metamodel.predict(X)
            return scores, np.zeros(len(scores), dtype=bool), None
        inside, outside = self._metamodel.predict_both(X)
        spread = self._metamodel.spread(X)
        weight = np.where(X[:, -1] > self._population.accuracy_range[1], 1.0,
                          self._metamodel.route_weight(outside, spread))
        return mix_stacks(inside, outside, weight), weight > 0.5, spread

    def _out_of_population_halfwidth(self, scores: np.ndarray,
                                     spread: np.ndarray | None) -> np.ndarray:
        """The half-width a flagged or routed target gets (`uncertainty`: the extrapolation
        interval, at least the normalised conformal one; else `OOD_WIDENING` times the usual)."""
        half = np.full(len(scores), OOD_WIDENING * self._halfwidth)
        if self._extrapolation is not None:
            half = self._extrapolation.halfwidth(self._population.excess(scores))
        if self._spread_scale is not None:
            half = np.maximum(half, self._spread_scale * spread)
        return half

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

    # -- persistence ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the benchmark as a directory, atomically (`disco_ray.io.benchmark`)."""
        from disco_ray.io.benchmark import write_benchmark

        return write_benchmark(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path) -> "CondensedBenchmark":
        """Load a saved benchmark and re-fit its metamodel (deterministic)."""
        from disco_ray.io.benchmark import read_benchmark

        return read_benchmark(Path(directory))


def data_hash(outputs: ModelOutputs) -> str:
    """sha256 of everything the offline phase reads from the reference outputs."""
    digest = hashlib.sha256()
    for array in (outputs.model_ids, outputs.sample_ids, outputs.correct, outputs.probs,
                  outputs.full_score, outputs.gold, outputs.groups):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass
class _Candidate:
    """One evaluated (selection, guiding subset, metamodel) configuration; `unbiased`: its
    (weighted) anchor mean estimates any model's score without bias."""

    cv_mae: float
    guiding: int | None
    spec: dict
    anchors: np.ndarray
    disagreement: np.ndarray | None
    fitted: tuple
    selection: str
    weights: np.ndarray | None
    unbiased: bool


def _given_scores(scores: np.ndarray | Mapping[str, np.ndarray] | None,
                  kind: str) -> np.ndarray | None:
    """Precomputed disagreement of `kind`: one array for every kind, or a {kind: array} map."""
    if scores is None or isinstance(scores, np.ndarray):
        return scores
    return scores.get(kind)


def condense(references: ModelOutputs, settings: CondenseSettings = CondenseSettings(),
             scores: np.ndarray | Mapping[str, np.ndarray] | None = None) -> CondensedBenchmark:
    """Offline phase: choose anchors and a metamodel on reference models only.

    `scores` may hold precomputed disagreement over all references (e.g. from the Ray
    reduction): one array, or a mapping {`pds`/`jsd`: array}. Guiding subsets other than all
    references are then still scored in memory.
    """
    if references.n_models < MIN_REFERENCES:
        raise ValueError(f"{references.source}: {references.n_models} reference model(s); "
                         f"condensing needs at least {MIN_REFERENCES} (to cross-validate on "
                         "them). Fix: add reference models (dozens make a useful benchmark)")
    if settings.k > references.n_samples:
        raise ValueError(f"k={settings.k} anchors requested but {references.source} has "
                         f"{references.n_samples} samples. Fix: choose k <= "
                         f"{references.n_samples}")
    irt_cache: dict = {}
    candidates, unbiased_mean = _feasible_candidates(references, settings)
    several = len(candidates) > 1
    nested = several and references.n_models < settings.nested_below and _folds_can_condense(
        references.n_models, settings.cv_folds)
    # several candidates are compared with cheap proxies of the metamodels, or nested fits
    specs = tuple(_proxy(spec) for spec in settings.metamodels) if several else settings.metamodels
    best: _Candidate | None = None
    for candidate in _drawn_candidates(references, settings, candidates, unbiased_mean, scores):
        if nested:
            candidate.cv_mae = _nested_error(references, settings, candidate)
        else:
            candidate.cv_mae = _fit_candidate(candidate, references, specs, settings, irt_cache)
        if best is None or candidate.cv_mae < best.cv_mae:
            best = candidate
    if best is None:
        raise NoCandidateError("every selection candidate was skipped. Fix: add `random` or "
                               "`cluster` to the candidates")
    if several:   # fit the real metamodels on the chosen anchors
        error = _fit_candidate(best, references, settings.metamodels, settings, irt_cache)
        # a nested error is that of the whole offline phase, anchor choice included: keep it
        best.cv_mae = best.cv_mae if nested and np.isfinite(best.cv_mae) else error
    shown = (best.disagreement if best.disagreement is not None
             else np.zeros(references.n_samples))
    choice = {"guiding": best.guiding, "metamodel": best.spec, "cv_mae": best.cv_mae}
    if settings.candidates:
        choice["selection"] = best.selection
    return CondensedBenchmark(
        settings, references.take_samples(best.anchors), choice,
        dict(zip(references.sample_ids.tolist(), map(float, shown))), data_hash(references),
        best.fitted)


def _folds_can_condense(n_models: int, cv_folds: int) -> bool:
    """Whether every training part of `cross_validated_error`'s folds holds enough references."""
    folds = max(2, min(cv_folds, n_models))
    return n_models - -(-n_models // folds) >= MIN_REFERENCES


def _nested_error(references: ModelOutputs, settings: CondenseSettings,
                  candidate: _Candidate) -> float:
    """The whole offline phase's CV error with only this candidate; infinite when it cannot
    draw its anchors from some fold's references (e.g. too alike on 3 models)."""
    try:
        return cross_validated_error(references, replace(
            settings, candidates=(candidate.selection,), guiding=(candidate.guiding,)))
    except NoCandidateError:
        return np.inf


def _drawn_candidates(references: ModelOutputs, settings: CondenseSettings,
                      candidates: list[tuple[str, str]], unbiased_mean: bool,
                      scores: np.ndarray | Mapping[str, np.ndarray] | None) -> Iterator[_Candidate]:
    """Every (selection, guiding subset) candidate with its anchors drawn, not yet validated
    (a candidate whose anchors cannot be drawn is skipped)."""
    for kind, score in candidates:
        for guiding in (settings.guiding if kind not in ("random", "cluster") else (None,)):
            drawn = _draw_anchors(references, settings, kind, score, guiding, scores)
            if drawn is None:
                continue
            anchors, weights, disagreement = drawn
            yield _Candidate(
                cv_mae=np.inf, guiding=guiding, spec={}, anchors=anchors,
                disagreement=disagreement, fitted=(), weights=weights,
                selection=kind if kind == "random" else f"{kind}-{score}",
                unbiased=unbiased_mean and _unbiased_selection(kind, score))


def _fit_candidate(candidate: _Candidate, references: ModelOutputs, specs: tuple[dict, ...],
                   settings: CondenseSettings, irt_cache: dict) -> float:
    """Fit the metamodel candidates `specs` on a candidate's anchors; keep the one with the
    lowest cross-validated error (its spec and fit) and return that error."""
    prepared = _prepare_specs(specs, references, candidate.anchors, candidate.weights,
                              settings.seed, irt_cache, candidate.unbiased)
    index, fits, maes = choose_metamodel(prepared,
                                         anchor_features(references, candidate.anchors),
                                         references.scores(), settings.cv_folds, settings.seed)
    candidate.spec, candidate.fitted = prepared[index], fits[index]
    return maes[index]


def cross_validated_error(references: ModelOutputs, settings: CondenseSettings) -> float:
    """Mean absolute error of the whole offline phase on `references`, by K-fold CV
    (`settings.cv_folds`): each fold's models are predicted by a benchmark condensed on the
    other folds, anchors and metamodel chosen there. With several selection candidates and
    fewer than `settings.nested_below` references, each fold's condense nests once more."""
    y = references.scores()
    folds = KFold(n_splits=max(2, min(settings.cv_folds, len(y))), shuffle=True,
                  random_state=settings.seed)
    errors = np.empty(len(y))
    for train, test in folds.split(y):
        benchmark = condense(references.take_models(train), settings)
        predicted = [p.score for p in benchmark.predict(references.take_models(test))]
        errors[test] = np.asarray(predicted) - y[test]
    return float(np.mean(np.abs(errors)))


def _feasible_candidates(references: ModelOutputs,
                         settings: CondenseSettings) -> tuple[list[tuple[str, str]], bool]:
    """The selection candidates worth trying, and whether the full score is the plain mean of
    the samples' outcomes (so a random draw's anchor mean is an unbiased estimate of it)."""
    y = references.scores()
    candidates = selection_candidates(settings)
    unbiased_mean = bool(np.allclose(y, references.correct_filled().mean(axis=1), atol=1e-4))
    few = any(spec.get("regressor") == "stack" and round(
        spec.get("top_fraction", 0.1) * len(y)) < spec.get("min_top", 10)
        for spec in settings.metamodels)
    if unbiased_mean and few and any(_unbiased_selection(*c) for c in candidates):
        # too few references to calibrate extrapolation: keep anchors whose plain weighted mean
        # stays unbiased beyond the references (the fallback for out-of-population targets)
        candidates = [c for c in candidates if _unbiased_selection(*c)]
    return candidates, unbiased_mean


def _draw_anchors(references: ModelOutputs, settings: CondenseSettings, kind: str, score: str,
                  guiding: int | None, scores: np.ndarray | Mapping[str, np.ndarray] | None
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None:
    """(anchors, their weights or None, the disagreement behind them or None) of one selection
    candidate; None when its disagreement score is degenerate on these references."""
    if kind == "cluster":
        anchors, weights = cluster_k(references.correct_filled().T, settings.k, settings.seed,
                                     score or "centroid")
        return anchors, weights, None
    disagreement = None
    if kind != "random":
        disagreement = _given_scores(scores, score) if guiding is None else None
        if disagreement is None:
            disagreement = disagreement_scores(references.distributions(), score, guiding,
                                               settings.seed)
        if settings.candidates and _degenerate(disagreement):
            return None
    anchors = select_anchors(references.n_samples, settings.k, kind, disagreement,
                             settings.seed, references.groups)
    return anchors, None, disagreement


def selection_name(settings: Mapping, choice: Mapping) -> str:
    """How the anchors were chosen (`top-jsd`, `cluster-random`, `random`, ...), from a
    benchmark's settings and choice as saved in its manifest."""
    if choice.get("selection"):
        return choice["selection"]
    if settings["selection"] in ("top", "stratified"):
        return f"{settings['selection']}-{settings['score']}"
    return settings["selection"]


def selection_candidates(settings: CondenseSettings) -> list[tuple[str, str]]:
    """(selection kind, disagreement score) pairs to try."""
    if not settings.candidates:
        return [(settings.selection, "centroid" if settings.selection == "cluster"
                 else settings.score)]
    pairs = []
    for name in settings.candidates:
        kind, _, score = name.partition("-")
        if kind not in ("random", "cluster", "top", "stratified"):
            raise ValueError(f"unknown selection candidate '{name}'. Fix: use random, cluster, "
                             "cluster-random, top-pds, top-jsd, stratified-pds or stratified-jsd")
        pairs.append((kind, score or ("centroid" if kind == "cluster" else settings.score)))
    return pairs


def _unbiased_selection(kind: str, score: str) -> bool:
    """Whether the (weighted) anchor mean is design-unbiased for any model (random draws)."""
    return kind == "random" or (kind == "cluster" and score == "random")


def _proxy(spec: dict) -> dict:
    """A cheaper stand-in for choosing the anchors: a stack without its forest-based members."""
    if spec.get("regressor") != "stack":
        return spec
    members = [m for m in spec["members"] if m.get("regressor") not in ("rf", "hybrid")]
    return {**spec, "members": members or spec["members"]}


def _degenerate(scores: np.ndarray) -> bool:
    """True when most samples tie at the top score (PDS on 0/1 outcomes): top-k is arbitrary."""
    scores = np.asarray(scores, dtype=np.float64)
    return bool(np.mean(np.isclose(scores, scores.max())) > 0.5)


def _anchor_gold(references: ModelOutputs, anchors: np.ndarray) -> list[int] | None:
    """The anchors' gold choices, which tell right from wrong in a probability signature (None
    for 0/1 outcomes)."""
    if not references.has_probs:
        return None
    if references.gold is None:
        raise OutputsError(f"{references.source}: field 'gold' is missing; with per-choice "
                           "probabilities the IRT and anchor-mean metamodels need it to tell "
                           "which choice is right. Fix: add gold, leave probs out (correct alone "
                           "is enough), or use a method without them (e.g. jsd_rf)")
    return references.gold[anchors].tolist()


def _prepare_specs(specs: tuple[dict, ...], references: ModelOutputs, anchors: np.ndarray,
                   weights: np.ndarray | None, seed: int,
                   irt_cache: dict | None = None, unbiased: bool = False) -> list[dict]:
    """Metamodel specs with what they need from the full reference data, as plain JSON.

    gp-IRT needs 2PL item parameters of every sample (fitted here, on the references only), the
    anchors' weights, and the gold choices to read outcomes from probability signatures.
    """
    from disco_ray.irt import fit_reference_irt, gp_irt_setup

    cache: dict[str, dict] = {} if irt_cache is None else irt_cache
    cache.pop("irt", None)

    def prepare(spec: dict) -> dict:
        spec = dict(spec)
        if spec.get("regressor") == "gp_irt" and "irt" not in spec:
            if "fits" not in cache:
                cache["fits"] = fit_reference_irt(references.correct_filled(), seed)
            if "irt" not in cache:
                cache["irt"] = gp_irt_setup(references.correct_filled(), anchors, weights, seed,
                                            cache["fits"])
            spec["irt"] = cache["irt"]
            spec["gold"] = _anchor_gold(references, anchors)
        if spec.get("regressor") == "direct" and weights is not None and "weights" not in spec:
            spec["weights"] = np.asarray(weights, dtype=np.float64).tolist()
            spec["gold"] = _anchor_gold(references, anchors)
        if spec.get("regressor") == "stack":
            spec["members"] = [prepare(member) for member in spec["members"]]
            # the (weighted) anchor mean estimates the score without bias when the data is the
            # whole benchmark and the anchors are random draws (random or cluster-random)
            spec.setdefault("mean_is_unbiased", bool(unbiased))
        return spec

    return [json.loads(json.dumps(prepare(spec))) for spec in specs]
