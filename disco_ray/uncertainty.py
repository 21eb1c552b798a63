"""Prediction intervals (split-conformal on out-of-fold residuals) and out-of-population checks.

In-population targets get the split-conformal half-width of the references' out-of-fold
residuals. Targets flagged out of population get `ExtrapolationInterval`: a half-width that grows
with how far the prediction lies beyond the references' scores, at a rate calibrated by an
extrapolation cross-validation inside the references (`StackedMetamodel`: the strongest
references held out and predicted from the others), and at least a normalised conformal interval
`q * spread(x)`: spread = the IRT ability's posterior SD on the anchors times the slope of the
ability-to-score map (wide when the anchors saturate, e.g. a model that answers them all right),
q = the conformal quantile of the references' |out-of-fold residual| / spread (fitted by
`StackedMetamodel`). Metamodels without that CV widen by the fixed `OOD_WIDENING`.

A target the check lets through whose interval reaches above the strongest reference's score is
*at the frontier* (`at_frontier`): it may be stronger than every reference, where no reference
could check its interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

from disco_ray.signatures import split_features

OOD_QUANTILE = 0.99
OOD_WIDENING = 2.0
MIN_CALIBRATION = 10


def at_frontier(upper: np.ndarray, best_reference_score: float) -> np.ndarray:
    """Whether each interval's upper end lies above the strongest reference's score."""
    return np.asarray(upper, dtype=np.float64) > best_reference_score


def conformal_halfwidth(residuals: np.ndarray, level: float) -> float:
    """Half-width of a `level` interval from n exchangeable residuals (finite-sample quantile)."""
    scores = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    n = len(scores)
    rank = int(np.ceil((n + 1) * level))
    return float(scores[min(rank, n) - 1])


def score_excess(predicted: np.ndarray, score_range: tuple[float, float]) -> np.ndarray:
    """How far predictions lie beyond a score range (0 inside it)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    return np.maximum(np.maximum(predicted - score_range[1], score_range[0] - predicted), 0.0)


@dataclass(frozen=True)
class ExtrapolationInterval:
    """Half-width for out-of-population targets: `scale * (base + excess)`.

    `base` is the split-conformal half-width of the out-of-population predictor's out-of-fold
    residuals; `excess` how far a prediction lies beyond the references' scores. `scale` is the
    conformal quantile of |residual| / (base + excess) over an extrapolation CV inside the
    references (the strongest references held out and predicted from the others), so the interval
    grows with the distance beyond the references at the rate measured there. With fewer than
    `MIN_CALIBRATION` such models, scale is at least `OOD_WIDENING`. When the out-of-population
    predictor is an unbiased plain mean (`unbiased`), its out-of-fold residuals hold for any model:
    scale 1 and no excess term.
    """

    base: float
    scale: float
    unbiased: bool = False

    @classmethod
    def fit(cls, oof_residuals: np.ndarray, top_residuals: np.ndarray | None,
            top_excess: np.ndarray | None, level: float,
            unbiased: bool = False) -> "ExtrapolationInterval":
        base = max(conformal_halfwidth(oof_residuals, level), 1e-6)
        if unbiased:
            return cls(base, 1.0, True)
        if top_residuals is None or len(top_residuals) == 0:
            return cls(base, OOD_WIDENING)
        ratio = np.abs(top_residuals) / (base + np.asarray(top_excess))
        scale = max(1.0, conformal_halfwidth(ratio, level))
        if len(ratio) < MIN_CALIBRATION:
            scale = max(scale, OOD_WIDENING)
        return cls(base, float(scale))

    def halfwidth(self, excess: np.ndarray) -> np.ndarray:
        excess = np.asarray(excess, dtype=np.float64)
        return self.scale * (self.base + (0.0 * excess if self.unbiased else excess))


@dataclass
class PopulationCheck:
    """Says whether a target lies outside what the reference models cover.

    A target is out of population when its signature is farther from every reference than
    `OOD_QUANTILE` of the references are from their nearest other reference, or when its anchor
    accuracy or predicted score falls outside the references' range. Distances are Euclidean on
    the signature as it is (probabilities or outcomes, all in [0, 1]), so a reference's distance
    to the others and a target's to the references are exchangeable: an in-population target is
    flagged at about 1 - `OOD_QUANTILE`. (Standardising the columns first made near-constant ones
    dominate: with a few dozen references, most in-population targets looked out of it.)
    """

    neighbours: NearestNeighbors
    distance_limit: float
    accuracy_range: tuple[float, float]
    score_range: tuple[float, float]

    @classmethod
    def fit(cls, features: np.ndarray, scores: np.ndarray) -> "PopulationCheck":
        signature, accuracy = split_features(features)
        neighbours = NearestNeighbors(n_neighbors=min(2, len(signature))).fit(signature)
        nearest_other = neighbours.kneighbors(signature)[0][:, -1]
        return cls(neighbours, float(np.quantile(nearest_other, OOD_QUANTILE)),
                   (float(accuracy.min()), float(accuracy.max())),
                   (float(scores.min()), float(scores.max())))

    def excess(self, predicted: np.ndarray) -> np.ndarray:
        """How far predictions lie beyond the references' score range (0 inside it)."""
        return score_excess(predicted, self.score_range)

    def distance(self, signature: np.ndarray) -> np.ndarray:
        """[M] each signature's distance to its nearest reference."""
        return self.neighbours.kneighbors(signature, n_neighbors=1)[0][:, 0]

    def reasons(self, features: np.ndarray, predicted: np.ndarray) -> list[str]:
        """Per target, an empty string or why it lies outside the reference population."""
        signature, accuracy = split_features(features)
        out = []
        for d, acc, pred in zip(self.distance(signature), accuracy, predicted):
            why = []
            if d > self.distance_limit:
                why.append(f"signature farther from every reference ({d:.2f}) than "
                           f"{OOD_QUANTILE:.0%} of references are from theirs "
                           f"({self.distance_limit:.2f})")
            if not _within(acc, self.accuracy_range):
                why.append(f"anchor accuracy {acc:.3f} outside the references' "
                           f"[{self.accuracy_range[0]:.3f}, {self.accuracy_range[1]:.3f}]")
            if not _within(pred, self.score_range):
                why.append(f"predicted score {pred:.3f} outside the references' "
                           f"[{self.score_range[0]:.3f}, {self.score_range[1]:.3f}]")
            out.append("; ".join(why))
        return out


def _within(value: float, bounds: tuple[float, float], tolerance: float = 1e-6) -> bool:
    """`value` inside `bounds`, up to float32 rounding (a copy of a reference is inside)."""
    return bounds[0] - tolerance <= value <= bounds[1] + tolerance
