"""The embedded demo: scikit-learn's digits (1797 8x8 images) and a population of small classifiers.

The test split (65% of the images, stratified) is the benchmark; every model trains on (part of)
the remaining 35% only. `build_model(**options)` is the factory the `classifier` backend calls;
`references()` and `targets()` return the demo's model entries. Families of different sizes,
training lengths, training-set fractions and label noise spread accuracies from ~0.3 to ~0.98.
Everything is deterministic (same options, same predictions) and trains in under a second.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from disco_ray.tasks.base import MCSample, Task

TEST_SIZE = 0.65
SPLIT_SEED = 0
N_CLASSES = 10
CHOICES = tuple(str(d) for d in range(N_CLASSES))
PROB_FLOOR = 1e-3
MODEL_PATH = "disco_ray.zoo.digits:build_model"


@dataclass(frozen=True)
class Split:
    """The digits data split once: features scaled to [0, 1], original image indices kept."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    test_index: np.ndarray


@lru_cache(maxsize=4)
def data_split(test_size: float = TEST_SIZE, seed: int = SPLIT_SEED) -> Split:
    """The stratified train/test split (cached; the arrays are read-only)."""
    digits = load_digits()
    X, y = digits.data / 16.0, digits.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed,
                                   stratify=y)
    train, test = np.sort(train), np.sort(test)
    arrays = (X[train], y[train], X[test], y[test], test)
    for array in arrays:
        array.setflags(write=False)
    return Split(*arrays)


def task(test_size: float = TEST_SIZE, seed: int = SPLIT_SEED) -> Task:
    """The benchmark: one 10-way sample per test image (`digits/<image index>`)."""
    split = data_split(test_size, seed)
    samples = tuple(MCSample(f"digits/{i}", "", CHOICES, int(gold), inputs=x)
                    for i, x, gold in zip(split.test_index, split.X_test, split.y_test))
    return Task("digits", samples)


# -- models -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DigitsClassifier:
    """A fitted estimator whose `predict_proba` covers all 10 classes and is never exactly 0."""

    estimator: Any

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        probs = np.zeros((len(X), N_CLASSES))
        probs[:, self.estimator.classes_] = self.estimator.predict_proba(np.asarray(X))
        return (1.0 - PROB_FLOOR) * probs + PROB_FLOOR / N_CLASSES


def _logreg(X, y, seed: int, C: float = 1.0, max_iter: int = 100):
    return LogisticRegression(C=C, max_iter=max_iter).fit(X, y)


def _mlp(X, y, seed: int, hidden: int = 32, epochs: int = 10, lr: float = 1e-3,
         batch_size: int = 64):
    """An MLP trained epoch by epoch: fewer epochs = an earlier checkpoint of the same run."""
    model = MLPClassifier(hidden_layer_sizes=(hidden,), learning_rate_init=lr,
                          batch_size=batch_size, random_state=seed)
    for _ in range(epochs):
        model.partial_fit(X, y, classes=np.arange(N_CLASSES))
    return model


def _rf(X, y, seed: int, n_estimators: int = 50, max_depth: int | None = None):
    return RandomForestClassifier(n_estimators, max_depth=max_depth, random_state=seed,
                                  n_jobs=1).fit(X, y)


def _extra_trees(X, y, seed: int, n_estimators: int = 50, max_depth: int | None = None):
    return ExtraTreesClassifier(n_estimators, max_depth=max_depth, random_state=seed,
                                n_jobs=1).fit(X, y)


def _tree(X, y, seed: int, max_depth: int | None = None):
    return DecisionTreeClassifier(max_depth=max_depth, random_state=seed).fit(X, y)


def _knn(X, y, seed: int, k: int = 5):
    return KNeighborsClassifier(n_neighbors=min(k, len(y))).fit(X, y)


def _nb(X, y, seed: int, var_smoothing: float = 1e-9):
    return GaussianNB(var_smoothing=var_smoothing).fit(X, y)


def _svc(X, y, seed: int, C: float = 1.0, gamma: float | str = "scale"):
    """An RBF SVM with sigmoid-calibrated probabilities (5-fold, one final SVM)."""
    return CalibratedClassifierCV(SVC(C=C, gamma=gamma, random_state=seed),
                                  ensemble=False).fit(X, y)


FAMILIES: dict[str, Callable[..., Any]] = {
    "logreg": _logreg, "mlp": _mlp, "rf": _rf, "extra_trees": _extra_trees, "tree": _tree,
    "knn": _knn, "nb": _nb, "svc": _svc,
}


def training_data(seed: int, train_fraction: float = 1.0, label_noise: float = 0.0,
                  test_size: float = TEST_SIZE, split_seed: int = SPLIT_SEED
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A per-class subsample of the training split, with a share of labels replaced at random."""
    split = data_split(test_size, split_seed)
    rng = np.random.default_rng(seed)
    keep = np.concatenate([
        rng.permutation(np.flatnonzero(split.y_train == c))[
            :max(2, round(train_fraction * np.sum(split.y_train == c)))]
        for c in range(N_CLASSES)])
    keep = np.sort(keep)
    y = split.y_train[keep].copy()
    noisy = rng.random(len(y)) < label_noise
    y[noisy] = rng.integers(0, N_CLASSES, int(noisy.sum()))
    return split.X_train[keep], y


def build_model(family: str, seed: int = 0, train_fraction: float = 1.0,
                label_noise: float = 0.0, test_size: float = TEST_SIZE,
                split_seed: int = SPLIT_SEED, **params: Any) -> DigitsClassifier:
    """Train one model of `family` deterministically on the training split.

    `params` are the family's hyperparameters (e.g. mlp: hidden, epochs, lr; rf: n_estimators,
    max_depth; knn: k). `seed` seeds the training subsample, the label noise and the estimator.
    """
    if family not in FAMILIES:
        raise ValueError(f"digits zoo: field 'family': unknown family '{family}'. Fix: use one "
                         f"of {', '.join(FAMILIES)}")
    X, y = training_data(seed, train_fraction, label_noise, test_size, split_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return DigitsClassifier(FAMILIES[family](X, y, seed, **params))


# -- populations --------------------------------------------------------------------------------
_ABBREVIATIONS = {"hidden": "h", "epochs": "e", "seed": "s", "max_iter": "it",
                  "n_estimators": "n", "max_depth": "d", "train_fraction": "f",
                  "label_noise": "noise", "var_smoothing": "vs", "gamma": "g"}


def entry(family: str, **options: Any) -> dict:
    """A classifier model entry; its name spells the options (`mlp-h32-s2-e8`)."""
    tags = "-".join(f"{_ABBREVIATIONS.get(key, key)}{value}" for key, value in options.items())
    return {"name": f"{family}-{tags}" if tags else family, "backend": "classifier",
            "path": MODEL_PATH, "options": {"family": family, **options}}


def _mlp_runs(runs: list[dict], epochs: list[int]) -> list[dict]:
    return [entry("mlp", **run, epochs=e) for run in runs for e in epochs]


_REFERENCES: list[dict] = [
    *_mlp_runs([{"hidden": 16, "seed": 1}, {"hidden": 32, "seed": 2}, {"hidden": 64, "seed": 3}],
               [1, 2, 4, 8, 16, 32]),
    *_mlp_runs([{"hidden": 32, "seed": 4, "train_fraction": 0.3},
                {"hidden": 64, "seed": 5, "label_noise": 0.3}], [2, 8, 32]),
    *[entry("logreg", C=C) for C in [0.001, 0.01, 0.1, 1.0, 10.0]],
    entry("logreg", C=1.0, max_iter=5), entry("logreg", C=1.0, train_fraction=0.1),
    entry("logreg", C=1.0, label_noise=0.5),
    *[entry("rf", n_estimators=n, max_depth=d, seed=s)
      for n, d, s in [(5, 3, 1), (20, None, 3), (50, 8, 4), (100, None, 5)]],
    entry("rf", n_estimators=50, train_fraction=0.1, seed=6),
    entry("rf", n_estimators=10, max_depth=5, label_noise=0.3, seed=7),
    *[entry("extra_trees", n_estimators=n, max_depth=d, seed=s)
      for n, d, s in [(10, 4, 2), (20, 8, 3)]],
    entry("extra_trees", n_estimators=50, train_fraction=0.5, seed=4),
    *[entry("tree", max_depth=d, seed=s) for d, s in [(2, 1), (3, 2), (5, 3), (None, 4)]],
    entry("tree", max_depth=8, train_fraction=0.5, seed=5),
    entry("tree", max_depth=6, label_noise=0.2, seed=6),
    *[entry("knn", k=k, train_fraction=f) for k, f in [(1, 0.5), (5, 0.5), (25, 1.0), (1, 0.1),
                                                       (10, 0.3)]],
    entry("knn", k=5, label_noise=0.4, seed=1),
    entry("nb"), entry("nb", var_smoothing=0.1), entry("nb", train_fraction=0.1, seed=2),
    entry("nb", var_smoothing=0.01, label_noise=0.3, seed=3),
    *[entry("svc", C=C, gamma=g, seed=s) for C, g, s in [(0.1, 0.01, 1), (1.0, 0.001, 2)]],
    entry("svc", C=1.0, train_fraction=0.1, seed=4),
]

_TARGETS: list[dict] = [
    entry("mlp", hidden=32, seed=2, epochs=3), entry("mlp", hidden=32, seed=2, epochs=12),
    entry("mlp", hidden=64, seed=3, epochs=24), entry("mlp", hidden=48, seed=7, epochs=6),
    entry("mlp", hidden=32, seed=4, train_fraction=0.3, epochs=16),
    entry("logreg", C=0.3, train_fraction=0.5, seed=3),
    entry("rf", n_estimators=30, max_depth=6, seed=7),
    entry("knn", k=3, label_noise=0.2, seed=3),
    entry("tree", max_depth=4, seed=5),
    entry("extra_trees", n_estimators=20, max_depth=6, label_noise=0.2, seed=3),
    entry("svc", C=10.0, seed=2),
]


def _with(entries: list[dict], overrides: dict) -> list[dict]:
    return [{**e, "options": {**e["options"], **overrides}} for e in entries]


def references(**overrides: Any) -> list[dict]:
    """The demo's reference models; `overrides` (e.g. test_size) go into every entry's options."""
    return _with(_REFERENCES, overrides)


def targets(**overrides: Any) -> list[dict]:
    """The demo's held-out targets: later checkpoints, unseen configurations, one stronger model."""
    return _with(_TARGETS, overrides)
