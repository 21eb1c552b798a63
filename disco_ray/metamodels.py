"""Metamodels: map anchor features to a full-benchmark score (scikit-learn estimators).

`SignatureRegressor` reduces the signature with PCA (fitted on reference models only, inside
`fit`), optionally appends the anchor accuracy, and regresses the score (or its residual from
the anchor accuracy). `AnchorMean` is the plain mean of outcomes on the anchors.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.neighbors import KNeighborsRegressor

from disco_ray.signatures import split_features

REGRESSORS = ("rf", "knn", "ridge")


def make_regressor(name: str, seed: int) -> BaseEstimator:
    """The regressor behind a metamodel: the paper's kNN (k=1, cosine) and RF, or Ridge."""
    if name == "rf":
        return RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=-1,
                                     oob_score=True)
    if name == "knn":
        return KNeighborsRegressor(n_neighbors=1, metric="cosine", algorithm="brute")
    if name == "ridge":
        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    raise ValueError(f"unknown regressor '{name}'. Fix: use one of {REGRESSORS}")


class AnchorMean(RegressorMixin, BaseEstimator):
    """Predict the mean outcome on the anchors (no fitting)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> "AnchorMean":
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return split_features(np.asarray(X))[1]


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
    if spec.get("regressor") == "direct":
        return AnchorMean()
    return SignatureRegressor(seed=seed, **spec)


def fit_with_out_of_fold(spec: dict, X: np.ndarray, y: np.ndarray, folds: int,
                         seed: int) -> tuple[BaseEstimator, np.ndarray]:
    """Fit a metamodel on all references and get its out-of-fold predictions over them.

    Random Forests use their out-of-bag predictions (one fit); other metamodels K-fold CV.
    """
    model = make_metamodel(spec, seed)
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

    Ties go to the earlier candidate.
    """
    fits = [fit_with_out_of_fold(spec, X, y, folds, seed) for spec in candidates]
    maes = [float(np.mean(np.abs(oof - y))) for _, oof in fits]
    return int(np.argmin(maes)), fits, maes
