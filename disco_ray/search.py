"""The offline phase: choose an anchor design and a metamodel by CV over reference models.

`condense(references, settings)` draws every candidate design's anchors (disagreement over the
guiding models, then top-k, stratified, clustered or random), fits the candidate metamodels on
them and keeps the lowest validation error; with several designs and few references, designs
are compared by a nested CV (`cross_validated_error`). The result is a `CondensedBenchmark`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator, Mapping

import numpy as np
from sklearn.model_selection import KFold

from disco_ray.condensed import CondensedBenchmark, data_hash
from disco_ray.design import AnchorDesign, CondenseSettings
from disco_ray.disagreement import disagreement_scores
from disco_ray.metamodels import MEMBERS, ReferenceContext, choose_metamodel
from disco_ray.metamodels.stack import MIN_TOP, TOP_FRACTION
from disco_ray.outputs import ModelOutputs
from disco_ray.selection import cluster_k, select_anchors
from disco_ray.signatures import anchor_features

MIN_REFERENCES = 3
Scores = np.ndarray | Mapping[str, np.ndarray] | None


class NoCandidateError(ValueError):
    """No anchor design could draw its anchors from these references."""


@dataclass
class _Candidate:
    """One anchor design with its anchors drawn, and, once validated, its best metamodel."""

    design: AnchorDesign
    anchors: np.ndarray
    disagreement: np.ndarray | None
    context: ReferenceContext
    cv_mae: float = np.inf
    spec: dict | None = None
    fitted: object | None = None


def condense(references: ModelOutputs, settings: CondenseSettings = CondenseSettings(),
             scores: Scores = None) -> CondensedBenchmark:
    """Offline phase: choose anchors and a metamodel on reference models only.

    `scores` may hold precomputed disagreement over all references (e.g. from the Ray
    reduction): one array, or a mapping {`pds`/`jsd`: array}. Guiding subsets are still scored
    in memory.
    """
    return _condense(references, settings, scores, skip_degenerate=len(settings.designs) > 1)


def _condense(references: ModelOutputs, settings: CondenseSettings, scores: Scores,
              skip_degenerate: bool) -> CondensedBenchmark:
    _check_can_condense(references, settings)
    irt_cache: dict = {}
    designs, unbiased_mean = _feasible_designs(references, settings)
    several = len(designs) > 1
    nested = several and references.n_models < settings.nested_below and _folds_can_condense(
        references.n_models, settings.cv_folds)
    # several designs are compared with cheap stand-ins of the metamodels, or nested fits
    specs = tuple(map(_stand_in, settings.metamodels)) if several else settings.metamodels
    best: _Candidate | None = None
    for candidate in _drawn_candidates(references, settings, designs, unbiased_mean, scores,
                                       skip_degenerate, irt_cache):
        if nested:
            candidate.cv_mae = _nested_error(references, settings, candidate.design)
        else:
            candidate.cv_mae = _fit_candidate(candidate, references, specs, settings)
        if best is None or candidate.cv_mae < best.cv_mae:
            best = candidate
    if best is None:
        raise NoCandidateError("every anchor design was skipped. Fix: add `random` or "
                               "`cluster` to the designs")
    if several:   # fit the real metamodels on the chosen anchors
        error = _fit_candidate(best, references, settings.metamodels, settings)
        # a nested error is that of the whole offline phase, anchor choice included: keep it
        best.cv_mae = best.cv_mae if nested and np.isfinite(best.cv_mae) else error
    shown = (best.disagreement if best.disagreement is not None
             else np.zeros(references.n_samples))
    choice = {"design": best.design.to_json(), "metamodel": best.spec, "cv_mae": best.cv_mae}
    return CondensedBenchmark(
        settings, references.take_samples(best.anchors), choice, best.context,
        dict(zip(references.sample_ids.tolist(), map(float, shown))), data_hash(references),
        best.fitted)


def _check_can_condense(references: ModelOutputs, settings: CondenseSettings) -> None:
    if references.n_models < MIN_REFERENCES:
        raise ValueError(f"{references.source}: {references.n_models} reference model(s); "
                         f"condensing needs at least {MIN_REFERENCES} (to cross-validate on "
                         "them). Fix: add reference models (dozens make a useful benchmark)")
    if settings.k > references.n_samples:
        raise ValueError(f"k={settings.k} anchors requested but {references.source} has "
                         f"{references.n_samples} samples. Fix: choose k <= "
                         f"{references.n_samples}")


def cross_validated_error(references: ModelOutputs, settings: CondenseSettings,
                          skip_degenerate: bool | None = None) -> float:
    """Mean absolute error of the whole offline phase on `references`, by K-fold CV
    (`settings.cv_folds`): each fold's models are predicted by a benchmark condensed on the
    other folds, anchors and metamodel chosen there. With several designs and fewer than
    `settings.nested_below` references, each fold's condense nests once more."""
    skip = len(settings.designs) > 1 if skip_degenerate is None else skip_degenerate
    y = references.scores()
    folds = KFold(n_splits=max(2, min(settings.cv_folds, len(y))), shuffle=True,
                  random_state=settings.seed)
    errors = np.empty(len(y))
    for train, test in folds.split(y):
        benchmark = _condense(references.take_models(train), settings, None, skip)
        predicted = [p.score for p in benchmark.predict(references.take_models(test))]
        errors[test] = np.asarray(predicted) - y[test]
    return float(np.mean(np.abs(errors)))


def _folds_can_condense(n_models: int, cv_folds: int) -> bool:
    """Whether every training part of `cross_validated_error`'s folds holds enough references."""
    folds = max(2, min(cv_folds, n_models))
    return n_models - -(-n_models // folds) >= MIN_REFERENCES


def _nested_error(references: ModelOutputs, settings: CondenseSettings,
                  design: AnchorDesign) -> float:
    """The whole offline phase's CV error with only this design; infinite when it cannot draw
    its anchors from some fold's references (e.g. too alike on 3 models)."""
    try:
        return cross_validated_error(references, replace(settings, designs=(design,)),
                                     skip_degenerate=True)
    except NoCandidateError:
        return np.inf


def _drawn_candidates(references: ModelOutputs, settings: CondenseSettings,
                      designs: list[AnchorDesign], unbiased_mean: bool, scores: Scores,
                      skip_degenerate: bool, irt_cache: dict) -> Iterator[_Candidate]:
    """Every design with its anchors drawn, not yet validated (a design whose disagreement is
    degenerate is skipped when `skip_degenerate`)."""
    for design in designs:
        anchors, weights, disagreement = _draw_anchors(references, settings, design, scores)
        if skip_degenerate and disagreement is not None and _degenerate(disagreement):
            continue
        context = ReferenceContext(
            anchors=anchors, weights=weights,
            gold=None if references.gold is None else references.gold[anchors].tolist(),
            has_probs=references.has_probs, mean_is_unbiased=unbiased_mean and design.unbiased,
            seed=settings.seed, outcomes=references.correct_filled(), irt_cache=irt_cache,
            source=str(references.source))
        yield _Candidate(design, anchors, disagreement, context)


def _fit_candidate(candidate: _Candidate, references: ModelOutputs, specs: tuple[dict, ...],
                   settings: CondenseSettings) -> float:
    """Fit the metamodel candidates `specs` on a candidate's anchors; keep the one with the
    lowest validation error (its spec and fit) and return that error."""
    index, fits = choose_metamodel(specs, anchor_features(references, candidate.anchors),
                                   references.scores(), settings.cv_folds, settings.seed,
                                   settings.interval, candidate.context)
    candidate.spec, candidate.fitted = specs[index], fits[index]
    return fits[index].validation_mae_


def _feasible_designs(references: ModelOutputs,
                      settings: CondenseSettings) -> tuple[list[AnchorDesign], bool]:
    """The designs worth trying, and whether the full score is the plain mean of the samples'
    outcomes (so a random draw's anchor mean is an unbiased estimate of it)."""
    y = references.scores()
    designs = list(settings.designs)
    unbiased_mean = bool(np.allclose(y, references.correct_filled().mean(axis=1), atol=1e-4))
    few = round(TOP_FRACTION * len(y)) < MIN_TOP and any(
        spec.get("regressor") == "stack" for spec in settings.metamodels)
    if unbiased_mean and few and any(design.unbiased for design in designs):
        # too few references to calibrate extrapolation: keep anchors whose plain weighted mean
        # stays unbiased beyond the references (the fallback for out-of-population targets)
        designs = [design for design in designs if design.unbiased]
    return designs, unbiased_mean


def _draw_anchors(references: ModelOutputs, settings: CondenseSettings, design: AnchorDesign,
                  scores: Scores) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(anchors, their weights or None, the disagreement behind them or None) of a design."""
    if design.kind == "cluster":
        anchors, weights = cluster_k(references.correct_filled().T, settings.k, settings.seed,
                                     design.score)
        return anchors, weights, None
    disagreement = None
    if design.by_disagreement:
        given = scores.get(design.score) if isinstance(scores, Mapping) else scores
        disagreement = given if design.guiding is None else None
        if disagreement is None:
            disagreement = disagreement_scores(references.distributions(), design.score,
                                               design.guiding, settings.seed)
    anchors = select_anchors(references.n_samples, settings.k, design.kind, disagreement,
                             settings.seed, references.groups)
    return anchors, None, disagreement


def _stand_in(spec: dict) -> dict:
    """A cheaper stand-in for comparing anchor designs: a stack without its forest members."""
    if spec.get("regressor") != "stack":
        return spec
    members = [m for m in spec["members"] if MEMBERS[m.get("regressor", "rf")].cost != "forest"]
    return {**spec, "members": members or spec["members"]}


def _degenerate(scores: np.ndarray) -> bool:
    """True when most samples tie at the top score (PDS on 0/1 outcomes): top-k is arbitrary."""
    scores = np.asarray(scores, dtype=np.float64)
    return bool(np.mean(np.isclose(scores, scores.max())) > 0.5)
