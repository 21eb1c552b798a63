"""DISCO's metamodel: a stack of members with a second stack for targets beyond the references.

`StackedMetamodel` is one scikit-learn estimator: `fit(X, y, context=...)` on the reference
models, `predict(X)` is DISCO's prediction (the two stacks mixed by each target's probability of
lying beyond the references) and `predict_interval(X)` its prediction interval.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from disco_ray.metamodels.context import ReferenceContext
from disco_ray.metamodels.members import GpIrtRegressor, kfold
from disco_ray.metamodels.registry import extrapolates, make_member
from disco_ray.uncertainty import ExtrapolationInterval, conformal_halfwidth, score_excess


def _convex_weights(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 minimising the squared error of P @ w (stacking)."""
    from scipy.optimize import minimize

    n = P.shape[1]
    if n == 1:
        return np.ones(1)
    scale = np.mean((P - y[:, None]) ** 2) + 1e-12

    def loss(w):
        r = P @ w - y
        return float(r @ r) / len(y) / scale, 2 * (P.T @ r) / len(y) / scale

    result = minimize(loss, np.full(n, 1.0 / n), jac=True, method="SLSQP",
                      bounds=[(0.0, 1.0)] * n,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                    "jac": lambda w: np.ones_like(w)}])
    w = np.clip(result.x, 0.0, None)
    return w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)


def _cross_stacked(P: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold predictions of the stack itself: each fold's rows weighted by convex weights
    fitted on the other folds (so the stack's validation error and conformal residuals do not
    flatter it by the weights fitted on the same rows)."""
    stacked = np.empty(len(y))
    for train, test in kfold(folds, len(y), seed).split(P):
        stacked[test] = P[test] @ _convex_weights(P[train], y[train])
    return stacked


def beyond_probability(prediction: np.ndarray, threshold: float,
                       spread: np.ndarray | None) -> np.ndarray:
    """P(score > threshold) for predictions with Gaussian errors of SD `spread` (per target,
    floored at 1e-6); the step 1[prediction > threshold] without a spread."""
    from scipy.stats import norm

    if spread is None:
        return (prediction > threshold).astype(np.float64)
    return norm.cdf((prediction - threshold) / np.maximum(spread, 1e-6))


def mix_stacks(inside: np.ndarray, outside: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The in-population prediction moved toward the out-of-population one by `weight`."""
    return inside + weight * (outside - inside)


ROUTE_QUANTILES = (0.8, 0.9, 0.95, 0.98, 1.0)
TOP_FRACTION = 0.1   # the share of the strongest references the extrapolation CV holds out
MIN_TOP = 10   # the fewest held-out strongest references that calibrate extrapolation


def strongest_rows(key: np.ndarray, fraction: float = TOP_FRACTION
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(the rest, the strongest `fraction` of the rows by `key`, at least 2), each in row order;
    ties keep row order."""
    n_top = max(2, int(round(fraction * len(key))))
    order = np.argsort(key, kind="stable")
    return np.sort(order[:-n_top]), np.sort(order[-n_top:])


class StackedMetamodel(RegressorMixin, BaseEstimator):
    """DISCO's metamodel: a convex stack of out-of-fold-validated members, a second stack, of
    the members that can extrapolate, for targets beyond the references, and the routing and
    intervals that combine them.

    fit(X, y, context), on reference models only:
      * every member's out-of-fold predictions (K-fold; RF out-of-bag) -> convex weights
        `weights_` minimising their squared error (the in-population stack); the stack's own
        out-of-fold predictions `oof_` weight each fold by weights fitted without it;
      * the out-of-population stack: convex weights `top_weights_` over the extrapolating
        members (`registry.MemberKind.extrapolates`), fitted on an extrapolation CV (the
        strongest `TOP_FRACTION` of the references held out and predicted from the others,
        every member refitted on the rest; the gp-IRT members keep the IRT setup the context
        fitted on every reference's outcomes, which reads outcomes, not scores) when it holds at
        least `MIN_TOP` models; else the plain (weighted) anchor mean when it is an unbiased
        estimate of the score (`context.mean_is_unbiased`), else weights fitted on the
        out-of-fold predictions;
      * `ood_oof_`: that stack's out-of-fold predictions over all references; `top_residuals_`,
        `top_excess_`: its residuals on the held-out strongest references and how far their
        predictions lie beyond the remaining references' best score (they calibrate
        `extrapolation_`, the out-of-population interval);
      * `route_above_`: a quantile of the reference scores chosen on the pooled validation
        errors (`validation_mae_`, the error at that choice).

    predict(X): each target mixes the two stacks, weighting the out-of-population one by the
    probability that the target lies beyond `route_above_` (`route_weight`: its
    out-of-population prediction against the IRT posterior spread of its anchors), all of it
    when its anchor accuracy beats every reference's (`accuracy_max_`); clipped to [0, 1].
    `soft_route=False`: a target takes that stack exactly when its out-of-population prediction
    exceeds `route_above_`.

    predict_interval(X, flagged): the split-conformal interval of level `interval`
    (`halfwidth_`); a target more likely beyond than not, or flagged out of population by the
    caller, gets at least the out-of-population half-width (`uncertainty`).

    `extrapolation_weight`: how much the extrapolation CV's error counts in `validation_mae_`
    (which chooses the route and the anchors): None pools the two sets of errors by their sizes,
    0.5 counts targets beyond the references as much as those within.
    """

    def __init__(self, members: tuple = (), folds: int = 5, seed: int = 0,
                 extrapolation_weight: float | None = None, soft_route: bool = True,
                 interval: float = 0.9):
        self.members = members
        self.folds = folds
        self.seed = seed
        self.extrapolation_weight = extrapolation_weight
        self.soft_route = soft_route
        self.interval = interval

    def fit(self, X: np.ndarray, y: np.ndarray,
            context: ReferenceContext | None = None) -> "StackedMetamodel":
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.context_ = context
        self.models_ = [make_member(spec, self.seed) for spec in self.members]
        oof = np.column_stack([model.fit_out_of_fold(X, y, self.folds, self.seed, context)
                               for model in self.models_])
        self.weights_ = _convex_weights(oof, y)
        self.oof_ = _cross_stacked(oof, y, self.folds, self.seed)
        self.extrapolating_ = np.array([extrapolates(spec) for spec in self.members])
        if not self.extrapolating_.any():
            self.extrapolating_[:] = True
        inner, top, calibrated, P = self._extrapolation_cv(X, y)
        self._fit_out_of_population(oof, y, inner, top, calibrated, P)
        spread = self.spread(X)
        self.spread_oof_ = None if spread is None else np.maximum(spread, 1e-6)
        self._choose_route(y, inner, top, P if calibrated else None)
        self._fit_intervals(X, y)
        return self

    def _extrapolation_cv(self, X: np.ndarray, y: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray | None]:
        """Hold out the strongest `TOP_FRACTION` of the references and predict them from the
        rest: (inner, top, calibrated, P). Every member is refitted on the rest when the CV holds
        at least `MIN_TOP` models (`calibrated`: the router compares both stacks there), else
        only the extrapolating ones (the IRT setups they read stay those of every reference);
        P is None with fewer than 5 models left to fit on."""
        ext = np.flatnonzero(self.extrapolating_)
        inner, top = strongest_rows(y)
        calibrated = len(inner) >= 5 and len(top) >= MIN_TOP
        if len(inner) < 5:
            return inner, top, calibrated, None
        fitted = range(len(self.members)) if calibrated else ext
        P = np.column_stack([make_member(self.members[j], self.seed)
                             .fit(X[inner], y[inner], self.context_).predict(X[top])
                             for j in fitted])
        return inner, top, calibrated, P

    def _fit_out_of_population(self, oof: np.ndarray, y: np.ndarray, inner: np.ndarray,
                               top: np.ndarray, calibrated: bool, P: np.ndarray | None) -> None:
        """The out-of-population stack: `top_weights_`, `ood_oof_`, `ood_is_unbiased_mean_`,
        and its residuals on the extrapolation CV (`top_residuals_`, `top_excess_`)."""
        ext = np.flatnonzero(self.extrapolating_)
        P_ext = P[:, ext] if calibrated else P
        direct = [j for j in ext if self.members[j].get("regressor") == "direct"]
        self.ood_is_unbiased_mean_ = False
        self.top_weights_ = np.zeros(len(self.members))
        self.top_residuals_ = self.top_excess_ = None
        if calibrated:
            self.top_weights_[ext] = _convex_weights(P_ext, y[top])
        elif self.context_ is not None and self.context_.mean_is_unbiased and direct:
            # too few references to calibrate extrapolation, and the (weighted) anchor mean is
            # an unbiased estimate of the score for any model: beyond the references, use it
            self.top_weights_[direct[0]] = 1.0
            self.ood_is_unbiased_mean_ = True
        else:
            self.top_weights_[ext] = _convex_weights(oof[:, ext], y)
        if calibrated or self.ood_is_unbiased_mean_:
            self.ood_oof_ = oof @ self.top_weights_
        else:   # weights fitted on these very rows
            self.ood_oof_ = _cross_stacked(oof[:, ext], y, self.folds, self.seed)
        if P_ext is not None and not self.ood_is_unbiased_mean_:
            predicted = P_ext @ self.top_weights_[ext]
            self.top_residuals_ = predicted - y[top]
            self.top_excess_ = np.maximum(predicted - y[inner].max(), 0.0)

    def _choose_route(self, y: np.ndarray, inner: np.ndarray, top: np.ndarray,
                      P: np.ndarray | None) -> None:
        """Choose `route_above_`: a target's prediction mixes the two stacks by its probability of
        lying beyond it (`route_weight`). Candidates are quantiles `ROUTE_QUANTILES` of the
        reference scores; the choice minimises the mean error over the references' out-of-fold
        predictions pooled with the extrapolation CV's predictions of the strongest references
        (threshold from the remaining references), or their mix by `extrapolation_weight`. Sets
        `validation_mae_`, that error at the choice: what `choose_metamodel` (and so the anchor
        choice) minimises.
        """
        spread = self.spread_oof_ if self.soft_route else None

        def routed_oof(threshold: float) -> np.ndarray:
            weight = beyond_probability(self.ood_oof_, threshold, spread)
            return mix_stacks(self.oof_, self.ood_oof_, weight)

        self.route_quantile_ = 1.0
        self.route_above_ = float(y.max())
        self.validation_mae_ = float(np.mean(np.abs(routed_oof(y.max()) - y)))
        if P is None:
            return
        inside_top, outside_top = P @ self.weights_, P @ self.top_weights_
        spread_top = None if spread is None else spread[top]
        errors = []
        for q in ROUTE_QUANTILES:
            within = routed_oof(np.quantile(y, q))
            beyond = mix_stacks(inside_top, outside_top, beyond_probability(
                outside_top, np.quantile(y[inner], q), spread_top))
            errors.append(self._validation_error(np.abs(within - y), np.abs(beyond - y[top])))
        best = int(np.argmin(errors))
        self.route_quantile_ = ROUTE_QUANTILES[best]
        self.route_above_ = float(np.quantile(y, self.route_quantile_))
        self.validation_mae_ = float(errors[best])

    def _validation_error(self, within: np.ndarray, beyond: np.ndarray) -> float:
        """Mean absolute error over both sets (pooled, or mixed by `extrapolation_weight`)."""
        if self.extrapolation_weight is None:
            return float(np.concatenate([within, beyond]).mean())
        w = self.extrapolation_weight
        return float((1 - w) * within.mean() + w * beyond.mean())

    def route_weight(self, outside: np.ndarray, spread: np.ndarray | None) -> np.ndarray:
        """Each target's weight on the out-of-population stack: the probability that its score
        lies beyond `route_above_`, given that stack's prediction `outside` and `spread(X)`, the
        IRT spread of its anchors (a 0/1 step with `soft_route=False` or without one)."""
        return beyond_probability(outside, self.route_above_,
                                  spread if self.soft_route else None)

    def spread(self, X: np.ndarray) -> np.ndarray | None:
        """Per-target uncertainty scale from the IRT ability member (None without one)."""
        for model in self.models_:
            if isinstance(model, GpIrtRegressor) and model.feature == "theta":
                return model.spread(X)
        return None

    def predict_both(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(in-population stack, out-of-population stack) predictions."""
        P = np.column_stack([model.predict(X) for model in self.models_])
        return P @ self.weights_, P @ self.top_weights_

    def route(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(scores, weight, spread): DISCO's clipped predictions, each target's weight on the
        out-of-population stack, and the IRT spread of its anchors (None without an ability
        member)."""
        X = np.asarray(X, dtype=np.float64)
        inside, outside = self.predict_both(X)
        spread = self.spread(X)
        weight = np.where(X[:, -1] > self.accuracy_max_, 1.0, self.route_weight(outside, spread))
        return np.clip(mix_stacks(inside, outside, weight), 0.0, 1.0), weight, spread

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.route(X)[0]

    def predict_interval(self, X: np.ndarray, flagged: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of each target's interval; `flagged`: targets the caller found out of
        population (they get the out-of-population half-width, as routed targets do)."""
        scores, weight, spread = self.route(X)
        half = self.extrapolation_.halfwidth(score_excess(scores, self.score_range_))
        if self.spread_scale_ is not None:
            half = np.maximum(half, self.spread_scale_ * spread)
        wide = weight > 0.5 if flagged is None else (weight > 0.5) | np.asarray(flagged, bool)
        return interval_bounds(scores, np.where(wide, np.maximum(half, self.halfwidth_),
                                                self.halfwidth_))

    def _fit_intervals(self, X: np.ndarray, y: np.ndarray) -> None:
        """The split-conformal half-width `halfwidth_`, the normalised conformal scale
        `spread_scale_` (|residual| / IRT spread; None without a spread) and the
        out-of-population interval `extrapolation_`; the references' `accuracy_max_` and
        `score_range_`."""
        self.accuracy_max_ = float(X[:, -1].max())
        self.score_range_ = (float(y.min()), float(y.max()))
        self.halfwidth_ = conformal_halfwidth(self.oof_ - y, self.interval)
        self.spread_scale_ = None if self.spread_oof_ is None else conformal_halfwidth(
            (self.ood_oof_ - y) / self.spread_oof_, self.interval)
        self.extrapolation_ = ExtrapolationInterval.fit(
            self.ood_oof_ - y, self.top_residuals_, self.top_excess_, self.interval,
            self.ood_is_unbiased_mean_)


def interval_bounds(scores: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) = scores -/+ half, within [0, 1]."""
    return np.maximum(scores - half, 0.0), np.minimum(scores + half, 1.0)
