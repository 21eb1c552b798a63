"""Prediction intervals (split-conformal on out-of-fold residuals) and out-of-population checks.

In-population targets get the split-conformal half-width of the references' out-of-fold
residuals. Targets flagged out of population get a half-width calibrated by an extrapolation
cross-validation inside the references (`StackedMetamodel`: the strongest references are held out
in turn, predicted from the others, and the same population check is applied to them): the
conformal quantile of the flagged ones' residuals. Where that CV is too small to calibrate (fewer
than `MIN_CALIBRATION` flagged references) the half-width is the largest of that quantile,
`OOD_WIDENING` x the in-population half-width, and the worst extrapolation residual seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from disco_ray.signatures import split_features

OOD_QUANTILE = 0.99
OOD_WIDENING = 2.0
MIN_CALIBRATION = 10


def conformal_halfwidth(residuals: np.ndarray, level: float) -> float:
    """Half-width of a `level` interval from n exchangeable residuals (finite-sample quantile)."""
    scores = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    n = len(scores)
    rank = int(np.ceil((n + 1) * level))
    return float(scores[min(rank, n) - 1])


def extrapolation_halfwidth(in_population: float, residuals: np.ndarray | None,
                            flags: np.ndarray | None, level: float) -> float:
    """Half-width for out-of-population targets, calibrated on the extrapolation CV's residuals."""
    if residuals is None or len(residuals) == 0:
        return OOD_WIDENING * in_population
    residuals = np.abs(np.asarray(residuals, dtype=np.float64))
    flagged = residuals[np.asarray(flags, dtype=bool)] if flags is not None else residuals
    if len(flagged) >= MIN_CALIBRATION:
        return max(in_population, conformal_halfwidth(flagged, level))
    return max(OOD_WIDENING * in_population, conformal_halfwidth(residuals, level),
               float(residuals.max()))


@dataclass
class PopulationCheck:
    """Says whether a target lies outside what the reference models cover.

    A target is out of population when its signature is farther from every reference than
    `OOD_QUANTILE` of the references are from their nearest neighbour, or when its anchor accuracy
    or predicted score falls outside the references' range.
    """

    scaler: StandardScaler
    neighbours: NearestNeighbors
    distance_limit: float
    accuracy_range: tuple[float, float]
    score_range: tuple[float, float]

    @classmethod
    def fit(cls, features: np.ndarray, scores: np.ndarray) -> "PopulationCheck":
        signature, accuracy = split_features(features)
        scaler = StandardScaler().fit(signature)
        z = scaler.transform(signature)
        neighbours = NearestNeighbors(n_neighbors=min(2, len(z))).fit(z)
        distances, _ = neighbours.kneighbors(z)
        nearest_other = distances[:, -1]
        return cls(scaler, neighbours, float(np.quantile(nearest_other, OOD_QUANTILE)),
                   (float(accuracy.min()), float(accuracy.max())),
                   (float(scores.min()), float(scores.max())))

    def reasons(self, features: np.ndarray, predicted: np.ndarray) -> list[str]:
        """Per target, an empty string or why it lies outside the reference population."""
        signature, accuracy = split_features(features)
        distance = self.neighbours.kneighbors(self.scaler.transform(signature), n_neighbors=1)[0]
        out = []
        for d, acc, pred in zip(distance[:, 0], accuracy, predicted):
            why = []
            if d > self.distance_limit:
                why.append(f"signature farther from every reference ({d:.2f}) than "
                           f"{OOD_QUANTILE:.0%} of references are from theirs "
                           f"({self.distance_limit:.2f})")
            if not self.accuracy_range[0] <= acc <= self.accuracy_range[1]:
                why.append(f"anchor accuracy {acc:.3f} outside the references' "
                           f"[{self.accuracy_range[0]:.3f}, {self.accuracy_range[1]:.3f}]")
            if not self.score_range[0] <= pred <= self.score_range[1]:
                why.append(f"predicted score {pred:.3f} outside the references' "
                           f"[{self.score_range[0]:.3f}, {self.score_range[1]:.3f}]")
            out.append("; ".join(why))
        return out
