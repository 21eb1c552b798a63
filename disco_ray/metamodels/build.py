"""Metamodels from their specs, fitted with out-of-fold validation, and the choice among them.

A metamodel is either DISCO's `StackedMetamodel` (spec `{"regressor": "stack", "members": [...]}`)
or one registered member with split-conformal intervals (`ConformalRegressor`). Both fit with
`fit(X, y, context=...)`, predict the score with `predict(X)` and its interval with
`predict_interval(X, flagged)`, and keep `oof_` (out-of-fold predictions over the references)
and `validation_mae_` (the error that chooses among metamodels and anchor designs).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from disco_ray.metamodels.context import ReferenceContext
from disco_ray.metamodels.registry import MEMBERS, make_member, member_kind
from disco_ray.metamodels.stack import StackedMetamodel, interval_bounds
from disco_ray.uncertainty import OOD_WIDENING, conformal_halfwidth

METAMODELS = (*MEMBERS, "stack")


class ConformalRegressor(RegressorMixin, BaseEstimator):
    """One member with a split-conformal interval of level `interval` on its out-of-fold
    residuals (`halfwidth_`), `OOD_WIDENING` times wider for targets flagged out of
    population."""

    def __init__(self, member: dict | None = None, folds: int = 5, seed: int = 0,
                 interval: float = 0.9):
        self.member = member
        self.folds = folds
        self.seed = seed
        self.interval = interval

    def fit(self, X: np.ndarray, y: np.ndarray,
            context: ReferenceContext | None = None) -> "ConformalRegressor":
        self.estimator_ = make_member(self.member or {}, self.seed)
        self.oof_ = self.estimator_.fit_out_of_fold(X, y, self.folds, self.seed, context)
        self.validation_mae_ = float(np.mean(np.abs(self.oof_ - y)))
        self.halfwidth_ = conformal_halfwidth(self.oof_ - y, self.interval)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.clip(self.estimator_.predict(X), 0.0, 1.0)

    def predict_interval(self, X: np.ndarray, flagged: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of each target's interval; `flagged` targets get it widened."""
        half = np.full(len(X), self.halfwidth_)
        if flagged is not None:
            half[np.asarray(flagged, bool)] = OOD_WIDENING * self.halfwidth_
        return interval_bounds(self.predict(X), half)


def make_metamodel(spec: dict, seed: int, folds: int = 5,
                   interval: float = 0.9) -> StackedMetamodel | ConformalRegressor:
    """An unfitted metamodel from its spec (a stack's spec may set its own `folds`)."""
    if spec.get("regressor") == "stack":
        options = {key: value for key, value in spec.items() if key != "regressor"}
        return StackedMetamodel(**{"folds": folds, **options, "seed": seed,
                                   "interval": interval})
    member_kind(spec)   # an unknown name fails here, before any fit
    return ConformalRegressor(dict(spec), folds, seed, interval)


def describe_metamodel(spec: dict) -> str:
    """'stack of direct, gp_irt, ridge' or the regressor's name (none of its parameters)."""
    kind = spec.get("regressor", "rf")
    if kind == "stack":
        members = dict.fromkeys(m.get("regressor", "rf") for m in spec["members"])
        return "stack of " + ", ".join(members)
    return kind


def choose_metamodel(specs: tuple[dict, ...], X: np.ndarray, y: np.ndarray, folds: int,
                     seed: int, interval: float, context: ReferenceContext
                     ) -> tuple[int, list[StackedMetamodel | ConformalRegressor]]:
    """Fit every candidate spec; return the index of the lowest `validation_mae_` (ties go to
    the earlier candidate) and the fitted metamodels."""
    fits = [make_metamodel(spec, seed, folds, interval).fit(X, y, context) for spec in specs]
    return int(np.argmin([model.validation_mae_ for model in fits])), fits
