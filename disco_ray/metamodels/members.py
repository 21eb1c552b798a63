"""The metamodels' members: scikit-learn estimators from anchor features to a full score.

`SignatureRegressor` reduces the signature with PCA (fitted on reference models only, inside
`fit`), optionally appends the anchor accuracy, and regresses the score. `AnchorMean` is the
(weighted) mean of outcomes on the anchors, `GpIrtRegressor` tinyBenchmarks' gp-IRT estimate (see
`irt`), `HybridRegressor` a ridge plus a forest on its residual. Every member fits with
`fit(X, y, context=None)` and gives its out-of-fold predictions over the references with
`fit_out_of_fold`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.metrics import pairwise_distances
from sklearn.model_selection import KFold, cross_val_predict

from disco_ray.metamodels.context import ReferenceContext
from disco_ray.signatures import split_features

REGRESSORS = ("rf", "knn", "ridge")


def make_regressor(name: str, seed: int) -> BaseEstimator:
    """The regressor behind a signature metamodel: the paper's kNN (k=1, cosine) and RF, or
    Ridge."""
    if name == "rf":
        return RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=-1,
                                     oob_score=True)
    if name == "knn":
        return CosineNearest()
    if name == "ridge":
        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    raise ValueError(f"unknown regressor '{name}'. Fix: use one of {REGRESSORS}")


def kfold(folds: int, n: int, seed: int) -> KFold:
    """The shuffled K-fold splitter of the out-of-fold predictions (2 <= K <= n)."""
    return KFold(n_splits=max(2, min(folds, n)), shuffle=True, random_state=seed)


class Member(RegressorMixin, BaseEstimator):
    """A metamodel member: `fit(X, y, context=None)`, `predict(X)`, and `fit_out_of_fold`."""

    def fit(self, X: np.ndarray, y: np.ndarray,
            context: ReferenceContext | None = None) -> "Member":
        raise NotImplementedError

    def fit_out_of_fold(self, X: np.ndarray, y: np.ndarray, folds: int, seed: int,
                        context: ReferenceContext | None = None) -> np.ndarray:
        """Fit on all references; return K-fold out-of-fold predictions over them."""
        if min(folds, len(y)) < 2:
            raise ValueError("cross-validation needs at least 2 reference models")
        oof = cross_val_predict(clone(self), X, y, cv=kfold(folds, len(y), seed))
        self.fit(X, y, context)
        return oof


class CosineNearest(RegressorMixin, BaseEstimator):
    """The paper's kNN: the score of the nearest reference by cosine distance (k = 1), with ties
    averaged.

    On 0/1 outcomes many references lie at exactly the same distance from a target; the
    references tied nearest (within `TIE`) are averaged rather than one picked by rounding. A
    row of zeros (wrong on every anchor) has no direction, at cosine distance 1 from
    everything: its nearest references are taken by Euclidean distance.
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


class AnchorMean(Member):
    """The mean outcome on the anchors (nothing to learn); weighted by the context's anchor
    weights when it has them (clustered anchors: each stands for its cluster's share)."""

    def fit(self, X: np.ndarray, y: np.ndarray,
            context: ReferenceContext | None = None) -> "AnchorMean":
        self.weights_ = None if context is None else context.anchor_weights()
        self.gold_ = None if self.weights_ is None else context.anchor_gold()
        return self

    def fit_out_of_fold(self, X: np.ndarray, y: np.ndarray, folds: int, seed: int,
                        context: ReferenceContext | None = None) -> np.ndarray:
        return self.fit(X, y, context).predict(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        signature, accuracy = split_features(np.asarray(X, dtype=np.float64))
        if self.weights_ is None:
            return accuracy
        return signature_correctness(signature, self.gold_) @ np.asarray(self.weights_)


class SignatureRegressor(Member):
    """PCA on the signature, then a regressor.

    Args:
        regressor: `rf`, `knn` or `ridge`.
        pca: number of PCA components (None: no reduction); capped by the data's rank.
        with_accuracy: append the anchor accuracy to the reduced signature.
        seed: random state of PCA and the regressor.
    """

    def __init__(self, regressor: str = "rf", pca: int | None = 256, with_accuracy: bool = False,
                 seed: int = 0):
        self.regressor = regressor
        self.pca = pca
        self.with_accuracy = with_accuracy
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray,
            context: ReferenceContext | None = None) -> "SignatureRegressor":
        signature, accuracy = split_features(np.asarray(X, dtype=np.float64))
        n_components = None if self.pca is None else min(self.pca, *signature.shape)
        self.pca_ = None
        if n_components is not None and n_components < signature.shape[1]:
            self.pca_ = PCA(n_components=n_components, random_state=self.seed).fit(signature)
        self.model_ = make_regressor(self.regressor, self.seed).fit(
            self._design(signature, accuracy), y)
        return self

    def fit_out_of_fold(self, X: np.ndarray, y: np.ndarray, folds: int, seed: int,
                        context: ReferenceContext | None = None) -> np.ndarray:
        """Random Forests give their out-of-bag predictions (one fit); others K-fold CV."""
        if self.regressor != "rf":
            return super().fit_out_of_fold(X, y, folds, seed, context)
        return self.fit(X, y).model_.oob_prediction_

    def predict(self, X: np.ndarray) -> np.ndarray:
        signature, accuracy = split_features(np.asarray(X, dtype=np.float64))
        return self.model_.predict(self._design(signature, accuracy))

    def _design(self, signature: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
        reduced = signature if self.pca_ is None else self.pca_.transform(signature)
        return np.hstack([reduced, accuracy[:, None]]) if self.with_accuracy else reduced


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


class GpIrtRegressor(Member):
    """tinyBenchmarks' gp-IRT estimate, mapped linearly to the full-benchmark score.

    `fit` takes the gp-IRT setup (`irt.gp_irt_setup`, fitted on the references' outcomes over
    every sample) from its context as `irt_`. gp-IRT estimates a model's mean correctness over
    the samples in the data; the full-benchmark score may be defined over more samples (Open LLM
    Leaderboard files hold a pre-selected subset), so `fit` learns `score = alpha + beta * gp_irt`
    (`coef_`) by least squares on the reference models' own gp-IRT estimates and full scores.

    Args:
        feature: `gp` (the gp-IRT estimate) or `theta` (the IRT ability fitted on the anchors).
        multidim: on the multidimensional IRT whose shape the references choose (`gp` only;
            `theta` needs the classic 1-D 2PL's scalar ability).
    """

    def __init__(self, feature: str = "gp", multidim: bool = False):
        if feature not in ("gp", "theta"):
            raise ValueError(f"unknown gp_irt feature '{feature}'. Fix: use gp or theta")
        if feature == "theta" and multidim:
            raise ValueError("the gp_irt feature 'theta' (a scalar ability) needs the 1-D IRT. "
                             "Fix: leave multidim out")
        self.feature = feature
        self.multidim = multidim

    def _set_context(self, context: ReferenceContext | None) -> None:
        if context is None:
            raise ValueError("gp-IRT needs the references' context (IRT item parameters)")
        self.irt_, self.gold_ = context.irt_setup(self.multidim), context.anchor_gold()

    def estimate(self, X: np.ndarray) -> np.ndarray:
        """gp-IRT estimate (`feature="gp"`) or the anchor-fitted ability (`"theta"`)."""
        from disco_ray.irt import gp_irt_predict, irt_ability

        signature, _ = split_features(np.asarray(X, dtype=np.float64))
        outcomes = signature_correctness(signature, self.gold_)
        if self.feature == "theta":
            return irt_ability(outcomes, self.irt_)
        return gp_irt_predict(outcomes, self.irt_)

    def spread(self, X: np.ndarray) -> np.ndarray:
        """How uncertain the anchors leave a model's score: the ability's posterior SD times
        the slope of the map from ability to score (`feature="theta"` only)."""
        from disco_ray.irt import irt_ability_sd

        signature, _ = split_features(np.asarray(X, dtype=np.float64))
        sd = irt_ability_sd(signature_correctness(signature, self.gold_), self.irt_)
        return sd * abs(self.coef_[1])

    def fit(self, X: np.ndarray, y: np.ndarray,
            context: ReferenceContext | None = None) -> "GpIrtRegressor":
        self._set_context(context)
        self.coef_ = _line(self.estimate(X), y)
        return self

    def fit_out_of_fold(self, X: np.ndarray, y: np.ndarray, folds: int, seed: int,
                        context: ReferenceContext | None = None) -> np.ndarray:
        """K-fold on the line only: the IRT estimate does not depend on the fold."""
        self._set_context(context)
        g = self.estimate(X)
        oof = np.empty(len(y))
        for train, test in kfold(folds, len(y), seed).split(g):
            coef = _line(g[train], y[train])
            oof[test] = coef[0] + coef[1] * g[test]
        self.coef_ = _line(g, y)
        return oof

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.coef_[0] + self.coef_[1] * self.estimate(X)


class HybridRegressor(Member):
    """Ridge on [PCA(signature), accuracy] (extrapolates), plus a Random Forest on its residual.

    Inside the references' range the forest corrects the ridge's curvature; beyond it the forest's
    correction stays bounded and the linear part carries the extrapolation. `oof_` holds the
    out-of-fold predictions: the ridge's K-fold ones plus the forest's out-of-bag ones.
    """

    def __init__(self, pca: int | None = 256, seed: int = 0):
        self.pca = pca
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray,
            context: ReferenceContext | None = None) -> "HybridRegressor":
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.linear_ = SignatureRegressor("ridge", self.pca, with_accuracy=True,
                                          seed=self.seed).fit(X, y)
        splitter = KFold(n_splits=min(5, len(y)), shuffle=True, random_state=self.seed)
        linear_oof = cross_val_predict(clone(self.linear_), X, y, cv=splitter)
        self.forest_ = SignatureRegressor("rf", self.pca, with_accuracy=True,
                                          seed=self.seed).fit(X, y - linear_oof)
        self.oof_ = linear_oof + self.forest_.model_.oob_prediction_
        return self

    def fit_out_of_fold(self, X: np.ndarray, y: np.ndarray, folds: int, seed: int,
                        context: ReferenceContext | None = None) -> np.ndarray:
        return self.fit(X, y).oof_

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.linear_.predict(X) + self.forest_.predict(X)
