"""Metamodels: map anchor features to a full-benchmark score (scikit-learn estimators).

`SignatureRegressor` reduces the signature with PCA (fitted on reference models only, inside
`fit`), optionally appends the anchor accuracy, and regresses the score (or its residual from
the anchor accuracy). `AnchorMean` is the plain mean of outcomes on the anchors.
`GpIrtRegressor` is tinyBenchmarks' gp-IRT estimate (see `irt`), `HybridRegressor` a ridge plus a
forest on its residual, and `StackedMetamodel` (DISCO's default) a convex stack of members chosen
by out-of-fold error, with a second stack for targets beyond the references.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.metrics import pairwise_distances
from sklearn.model_selection import KFold, cross_val_predict

from disco_ray.signatures import split_features

REGRESSORS = ("rf", "knn", "ridge")
METAMODELS = ("direct", "gp_irt", "hybrid", "stack") + REGRESSORS


def make_regressor(name: str, seed: int) -> BaseEstimator:
    """The regressor behind a metamodel: the paper's kNN (k=1, cosine) and RF, or Ridge."""
    if name == "rf":
        return RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=-1,
                                     oob_score=True)
    if name == "knn":
        return CosineNearest()
    if name == "ridge":
        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    raise ValueError(f"unknown regressor '{name}'. Fix: use one of {REGRESSORS}")


class CosineNearest(RegressorMixin, BaseEstimator):
    """The paper's kNN: the score of the nearest reference by cosine distance (k = 1), with ties
    averaged.

    On 0/1 outcomes many references lie at exactly the same distance from a target; a single
    nearest one is then picked by floating-point rounding (one seed's MAE on MMLU at k = 50 was
    4.2 pp in one run and 7.2 in another). The references tied nearest (within `TIE`) are
    averaged instead. A row of
    zeros (wrong on every anchor) has no direction, at cosine distance 1 from everything: its
    nearest references are taken by Euclidean distance.
    """

    TIE = 1e-9

    def fit(self, X: np.ndarray, y: np.ndarray) -> "CosineNearest":
        self.X_, self.y_ = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        distance = pairwise_distances(X, self.X_, metric="cosine")
        zero = ~X.any(axis=1)
        if zero.any():
            distance[zero] = pairwise_distances(X[zero], self.X_)
        nearest = distance <= distance.min(axis=1, keepdims=True) + self.TIE
        return (nearest @ self.y_) / nearest.sum(axis=1)


class AnchorMean(RegressorMixin, BaseEstimator):
    """Predict the mean outcome on the anchors (no fitting); weighted when `weights` are given
    (clustered anchors: each anchor stands for its cluster's share of the samples)."""

    def __init__(self, weights: list[float] | None = None, gold: list[int] | None = None):
        self.weights = weights
        self.gold = gold

    def fit(self, X: np.ndarray, y: np.ndarray) -> "AnchorMean":
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        signature, accuracy = split_features(np.asarray(X, dtype=np.float64))
        if self.weights is None:
            return accuracy
        return signature_correctness(signature, self.gold) @ np.asarray(self.weights)


class SignatureRegressor(RegressorMixin, BaseEstimator):
    """PCA on the signature, then a regressor.

    Args:
        regressor: `rf`, `knn` or `ridge`.
        pca: number of PCA components (None: no reduction); capped by the data's rank.
        with_accuracy: append the anchor accuracy to the reduced signature.
        residual: regress `score - anchor accuracy` instead of the score.
        seed: random state of PCA and the regressor.
    """

    def __init__(self, regressor: str = "rf", pca: int | None = 256, with_accuracy: bool = False,
                 residual: bool = False, seed: int = 0):
        self.regressor = regressor
        self.pca = pca
        self.with_accuracy = with_accuracy
        self.residual = residual
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> "SignatureRegressor":
        signature, accuracy = split_features(np.asarray(X, dtype=np.float64))
        n_components = None if self.pca is None else min(self.pca, *signature.shape)
        self.pca_ = None
        if n_components is not None and n_components < signature.shape[1]:
            self.pca_ = PCA(n_components=n_components, random_state=self.seed).fit(signature)
        target = y - accuracy if self.residual else y
        self.model_ = make_regressor(self.regressor, self.seed).fit(
            self._design(signature, accuracy), target)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        signature, accuracy = split_features(np.asarray(X, dtype=np.float64))
        prediction = self.model_.predict(self._design(signature, accuracy))
        return prediction + accuracy if self.residual else prediction

    def _design(self, signature: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
        reduced = signature if self.pca_ is None else self.pca_.transform(signature)
        return np.hstack([reduced, accuracy[:, None]]) if self.with_accuracy else reduced


def make_metamodel(spec: dict, seed: int) -> BaseEstimator:
    """A metamodel from its spec: `{"regressor": "direct"}` or SignatureRegressor's arguments."""
    spec = dict(spec)
    kind = spec.pop("regressor", "rf")
    if kind not in METAMODELS:
        raise ValueError(f"unknown metamodel '{kind}' in the spec {spec | {'regressor': kind}}. "
                         f"Fix: set 'regressor' to one of {', '.join(METAMODELS)}")
    if kind == "direct":
        return AnchorMean(**spec)
    if kind == "gp_irt":
        return GpIrtRegressor(**spec)
    if kind == "hybrid":
        return HybridRegressor(seed=seed, **spec)
    if kind == "stack":
        return StackedMetamodel(seed=seed, **spec)
    return SignatureRegressor(regressor=kind, seed=seed, **spec)


def describe_metamodel(spec: dict) -> str:
    """'stack of direct, gp_irt, ridge' or the regressor's name (none of its fitted parameters)."""
    kind = spec.get("regressor", "rf")
    if kind == "stack":
        members = dict.fromkeys(m.get("regressor", "rf") for m in spec["members"])
        return "stack of " + ", ".join(members)
    return kind


def fit_with_out_of_fold(spec: dict, X: np.ndarray, y: np.ndarray, folds: int,
                         seed: int) -> tuple[BaseEstimator, np.ndarray]:
    """Fit a metamodel on all references and get its out-of-fold predictions over them.

    Random Forests use their out-of-bag predictions (one fit); other metamodels K-fold CV.
    """
    model = make_metamodel(spec, seed)
    if isinstance(model, StackedMetamodel) and "folds" not in spec:
        model.folds = folds   # the caller's CV, unless the spec sets its own
    if isinstance(model, (StackedMetamodel, HybridRegressor)):
        model.fit(X, y)
        return model, model.oof_
    if isinstance(model, AnchorMean):
        return model, model.predict(X)
    if isinstance(model, GpIrtRegressor):
        # K-fold on the (fold-independent) IRT estimate; no estimator cloning (large params)
        g = model.estimate(X)
        oof = np.empty(len(y))
        splitter = KFold(n_splits=max(2, min(folds, len(y))), shuffle=True, random_state=seed)
        for train, test in splitter.split(g):
            coef = _line(g[train], y[train])
            oof[test] = coef[0] + coef[1] * g[test]
        model.coef_ = _line(g, y)
        return model, oof
    if isinstance(model, SignatureRegressor) and model.regressor == "rf":
        model.fit(X, y)
        oob = model.model_.oob_prediction_
        return model, oob + X[:, -1] if model.residual else oob
    folds = min(folds, len(y))
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 reference models")
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    oof = cross_val_predict(clone(model), X, y, cv=splitter)
    return model.fit(X, y), oof


def choose_metamodel(candidates: list[dict], X: np.ndarray, y: np.ndarray, folds: int,
                     seed: int) -> tuple[int, list[tuple[BaseEstimator, np.ndarray]], list[float]]:
    """Fit every candidate; return the index of the lowest out-of-fold MAE, the fits, the MAEs.

    A candidate's error is its `validation_mae_` when it has one (`StackedMetamodel`), else
    the MAE of its out-of-fold predictions. Ties go to the earlier candidate.
    """
    fits = [fit_with_out_of_fold(spec, X, y, folds, seed) for spec in candidates]
    maes = [float(getattr(model, "validation_mae_", np.mean(np.abs(oof - y))))
            for model, oof in fits]
    return int(np.argmin(maes)), fits, maes


# -- correctness from a signature ----------------------------------------------------------------

def signature_correctness(signature: np.ndarray, gold: list[int] | None) -> np.ndarray:
    """[M, k] 0/1 outcomes on the anchors from a signature.

    Without `gold` the signature already holds outcomes; with it, the signature holds [M, k*C]
    probabilities and an anchor counts correct when the gold choice has the strictly highest one.
    """
    signature = np.asarray(signature, dtype=np.float64)
    if gold is None:
        return signature
    gold = np.asarray(gold, dtype=np.int64)
    probs = signature.reshape(signature.shape[0], len(gold), -1)
    on_gold = np.take_along_axis(probs, gold[None, :, None], axis=2)[:, :, 0]
    others = probs.copy()
    np.put_along_axis(others, np.broadcast_to(gold[None, :, None], on_gold.shape + (1,)),
                      -np.inf, axis=2)
    return (on_gold > others.max(axis=2)).astype(np.float64)


def _line(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(intercept, slope) of the least-squares line y ~ x."""
    design = np.column_stack([np.ones_like(x), x])
    return np.linalg.lstsq(design, np.asarray(y, dtype=np.float64), rcond=None)[0]


class GpIrtRegressor(RegressorMixin, BaseEstimator):
    """tinyBenchmarks' gp-IRT estimate, mapped linearly to the full-benchmark score.

    `irt` is `irt.gp_irt_setup(...)` computed on the references' outcomes over all samples (at
    condense time). gp-IRT estimates a model's mean correctness over the samples in the data;
    the full-benchmark score may be defined over more samples (Open LLM Leaderboard files hold a
    pre-selected subset), so `fit` learns `score = alpha + beta * gp_irt` by least squares on
    the reference models' own gp-IRT estimates (from their anchor outcomes) and full scores.
    """

    def __init__(self, irt: dict | None = None, gold: list[int] | None = None,
                 feature: str = "gp"):
        self.irt = irt
        self.gold = gold
        self.feature = feature

    def estimate(self, X: np.ndarray) -> np.ndarray:
        """gp-IRT estimate (`feature="gp"`) or the anchor-fitted ability (`"theta"`)."""
        from disco_ray.irt import gp_irt_predict, irt_ability

        signature, _ = split_features(np.asarray(X, dtype=np.float64))
        outcomes = signature_correctness(signature, self.gold)
        if self.feature == "theta":
            return irt_ability(outcomes, self.irt)
        return gp_irt_predict(outcomes, self.irt)

    def spread(self, X: np.ndarray) -> np.ndarray:
        """How uncertain the anchors leave a model's score: the ability's posterior SD times
        the slope of the map from ability to score (`feature="theta"` only)."""
        from disco_ray.irt import irt_ability_sd

        signature, _ = split_features(np.asarray(X, dtype=np.float64))
        sd = irt_ability_sd(signature_correctness(signature, self.gold), self.irt)
        return sd * abs(self.coef_[1])

    def fit(self, X: np.ndarray, y: np.ndarray) -> "GpIrtRegressor":
        self.coef_ = _line(self.estimate(X), y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.coef_[0] + self.coef_[1] * self.estimate(X)


class HybridRegressor(RegressorMixin, BaseEstimator):
    """Ridge on [PCA(signature), accuracy] (extrapolates), plus a Random Forest on its residual.

    Inside the references' range the forest corrects the ridge's curvature; beyond it the forest's
    correction stays bounded and the linear part carries the extrapolation.
    """

    def __init__(self, pca: int | None = 256, seed: int = 0, shrink: float = 1.0):
        self.pca = pca
        self.seed = seed
        self.shrink = shrink

    def fit(self, X: np.ndarray, y: np.ndarray) -> "HybridRegressor":
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.linear_ = SignatureRegressor("ridge", self.pca, with_accuracy=True,
                                          seed=self.seed).fit(X, y)
        splitter = KFold(n_splits=min(5, len(y)), shuffle=True, random_state=self.seed)
        linear_oof = cross_val_predict(clone(self.linear_), X, y, cv=splitter)
        self.forest_ = SignatureRegressor("rf", self.pca, with_accuracy=True,
                                          seed=self.seed).fit(X, y - linear_oof)
        self.oof_ = linear_oof + self.shrink * self.forest_.model_.oob_prediction_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.linear_.predict(X) + self.shrink * self.forest_.predict(X)


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
    splitter = KFold(n_splits=max(2, min(folds, len(y))), shuffle=True, random_state=seed)
    for train, test in splitter.split(P):
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
EXTRAPOLATING = ("direct", "gp_irt")   # ridge on a saturating 0/1 signature does not


def extrapolates(spec: dict) -> bool:
    """Whether a member can predict beyond the references' scores: the anchor mean and the IRT
    estimates (a model of each item, not of the reference population). Forests and kNN are
    bounded by the references; a ridge on the signature saturates with the anchors (on the
    `top` split of the development data it erred most of all)."""
    return spec.get("regressor") in EXTRAPOLATING


class StackedMetamodel(RegressorMixin, BaseEstimator):
    """DISCO's default metamodel: a convex stack of out-of-fold-validated members, and a second
    stack, of the members that can extrapolate, for targets beyond the references.

    fit(X, y), on reference models only:
      * every member's out-of-fold predictions (K-fold; RF out-of-bag) -> convex weights
        `weights_` minimising their squared error (the in-population stack); the stack's own
        out-of-fold predictions `oof_` weight each fold by weights fitted without it (with few
        references, weights fitted on the same rows flatter the stack);
      * the out-of-population stack: convex weights `top_weights_` over the extrapolating
        members (`EXTRAPOLATING`: the anchor mean and IRT estimates), fitted on an extrapolation
        CV (the strongest `top_fraction` of the references held out and predicted from the
        others, every member refitted on the rest) when it holds at least `min_top` models; else
        the plain (weighted) anchor mean when it is an unbiased estimate of the score
        (`mean_is_unbiased`: the data is the whole benchmark), else weights fitted on the
        out-of-fold predictions;
      * `ood_oof_`: that stack's out-of-fold predictions over all references; `top_residuals_`,
        `top_excess_`: its residuals on the held-out strongest references and how far their
        predictions lie beyond the remaining references' best score (calibrates the intervals);
      * `route_above_`: a quantile of the reference scores chosen on the pooled validation
        errors. A target's prediction mixes the two stacks, weighting the out-of-population one
        by the probability that the target lies beyond `route_above_` (`route_weight`: its
        out-of-population prediction against the IRT posterior spread of its anchors), so a
        target far beyond takes that stack and one near the references' edge, where the
        anchors cannot tell, half of each; targets weaker than the references never take it
        (`CondensedBenchmark.predict`). `soft_route=False`: a target takes that stack exactly
        when its out-of-population prediction exceeds `route_above_`.

    `extrapolation_weight`: how much the extrapolation CV's error counts in `validation_mae_`
    (which chooses the route and, in `condense`, the anchors): None pools the two sets of
    errors by their sizes (the strongest references are ~1/11 of them), 0.5 counts targets
    beyond the references as much as those within.
    """

    def __init__(self, members: tuple = (), folds: int = 5, seed: int = 0,
                 top_fraction: float = 0.1, min_top: int = 10, mean_is_unbiased: bool = False,
                 extrapolation_weight: float | None = None, soft_route: bool = True):
        self.members = members
        self.folds = folds
        self.seed = seed
        self.top_fraction = top_fraction
        self.min_top = min_top
        self.mean_is_unbiased = mean_is_unbiased
        self.extrapolation_weight = extrapolation_weight
        self.soft_route = soft_route

    def fit(self, X: np.ndarray, y: np.ndarray) -> "StackedMetamodel":
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        fits = [fit_with_out_of_fold(spec, X, y, self.folds, self.seed) for spec in self.members]
        self.models_ = [model for model, _ in fits]
        oof = np.column_stack([pred for _, pred in fits])
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
        return self

    def _extrapolation_cv(self, X: np.ndarray, y: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray | None]:
        """Hold out the strongest `top_fraction` of the references and predict them from the
        rest: (inner, top, calibrated, P). Every member is refitted on the rest when the CV holds
        at least `min_top` models (`calibrated`: the router compares both stacks there), else
        only the extrapolating ones; P is None with fewer than 5 models left to fit on."""
        ext = np.flatnonzero(self.extrapolating_)
        n_top = max(2, int(round(self.top_fraction * len(y))))
        order = np.argsort(y, kind="stable")
        inner, top = np.sort(order[:-n_top]), np.sort(order[-n_top:])
        calibrated = len(inner) >= 5 and len(top) >= self.min_top
        if len(inner) < 5:
            return inner, top, calibrated, None
        fitted = range(len(self.members)) if calibrated else ext
        P = np.column_stack([make_metamodel(self.members[j], self.seed)
                             .fit(X[inner], y[inner]).predict(X[top]) for j in fitted])
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
        elif self.mean_is_unbiased and direct:
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

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_both(X)[0]
