"""Two-parameter logistic IRT (2PL) and the tinyBenchmarks estimators (p-IRT, gp-IRT).

Model: P(model m answers item i correctly) = sigmoid(a_i * theta_m - b_i), with discrimination
a_i, intercept b_i (difficulty b_i / a_i) and ability theta_m. `fit_2pl` finds the joint MAP
estimate under light Gaussian priors (theta ~ N(0, 1), a ~ N(1, 1), b ~ N(0, 3^2)) by alternating
vectorised Newton steps: one 1-D Newton step per model for the abilities, one 2-D Newton step per
item for (a, b), repeated. Every step is a handful of [M, N] array operations, so 3400 models x
150 items or 28 models x 12000 items fit in well under a second.

Estimators (Polo et al., "tinyBenchmarks", 2024), for a target that answered the anchors only:
  * anchor mean: sum_j w_j y_j (w: cluster-size weights, or 1/k for random anchors);
  * p-IRT: ability theta fitted on the anchors, then the mean over all N items with the
    observed anchors' outcomes plugged in: (sum_{anchors} y_i + sum_{others} P_i(theta)) / N;
  * gp-IRT: lam * anchor mean + (1 - lam) * p-IRT with lam = b^2 / (v/n + b^2), where b is the
    p-IRT bias (root mean square error) measured on reference models held out of the IRT fit,
    v the variance of per-item correctness and n the number of anchors. So lam -> 1 (the anchor
    mean) when p-IRT is badly biased and lam -> 0 (p-IRT) when the anchor mean is noisy.
Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRIOR_THETA = 1.0
PRIOR_A_MEAN, PRIOR_A_SD = 1.0, 1.0
PRIOR_B_SD = 3.0
A_BOUNDS = (0.05, 8.0)
B_BOUNDS = (-15.0, 15.0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass(frozen=True)
class ItemParams:
    """2PL item parameters: P(correct) = sigmoid(a * theta - b)."""

    a: np.ndarray
    b: np.ndarray

    def take(self, index: np.ndarray) -> "ItemParams":
        return ItemParams(self.a[index], self.b[index])

    def prob(self, theta: np.ndarray) -> np.ndarray:
        """[M, N] probabilities of a correct answer for abilities theta [M]."""
        return _sigmoid(np.asarray(theta, dtype=np.float64)[:, None] * self.a[None] - self.b[None])

    def to_json(self) -> dict:
        return {"a": self.a.tolist(), "b": self.b.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> "ItemParams":
        return cls(np.asarray(data["a"], dtype=np.float64), np.asarray(data["b"], dtype=np.float64))


def fit_2pl(responses: np.ndarray, iterations: int = 60, tol: float = 1e-4,
            ) -> tuple[np.ndarray, ItemParams]:
    """Joint MAP fit of a 2PL model to [M, N] responses in [0, 1] (NaN counted wrong).

    Returns (theta [M], ItemParams). Abilities are standardised (mean 0, sd 1) after every sweep,
    with the item parameters transformed to match, so the scale is identified.
    """
    y = np.nan_to_num(np.asarray(responses, dtype=np.float64), nan=0.0)
    m, n = y.shape
    # start: theta from standardised model accuracy, b from item logit difficulty, a = 1
    acc = y.mean(axis=1)
    theta = (acc - acc.mean()) / (acc.std() + 1e-9)
    p_item = np.clip(y.mean(axis=0), 0.02, 0.98)
    a = np.ones(n)
    b = -np.log(p_item / (1 - p_item))
    for _ in range(iterations):
        old = theta.copy()
        # abilities: one damped Newton step per model (vectorised)
        for _ in range(2):
            p = _sigmoid(theta[:, None] * a[None] - b[None])
            grad = ((y - p) * a[None]).sum(axis=1) - theta / PRIOR_THETA ** 2
            hess = -(p * (1 - p) * a[None] ** 2).sum(axis=1) - 1 / PRIOR_THETA ** 2
            theta = theta - np.clip(grad / hess, -1.0, 1.0)
        mu, sd = theta.mean(), theta.std() + 1e-9
        theta = (theta - mu) / sd
        a, b = a * sd, b - a * mu          # a*theta_old - b = (a*sd)*theta_new - (b - a*mu)
        # items: one 2-D Newton step per item on (a, b)
        for _ in range(2):
            p = _sigmoid(theta[:, None] * a[None] - b[None])
            r = y - p
            w = p * (1 - p)
            ga = (r * theta[:, None]).sum(axis=0) - (a - PRIOR_A_MEAN) / PRIOR_A_SD ** 2
            gb = -r.sum(axis=0) - b / PRIOR_B_SD ** 2
            haa = -(w * theta[:, None] ** 2).sum(axis=0) - 1 / PRIOR_A_SD ** 2
            hbb = -w.sum(axis=0) - 1 / PRIOR_B_SD ** 2
            hab = (w * theta[:, None]).sum(axis=0)
            det = haa * hbb - hab ** 2
            da = (hbb * ga - hab * gb) / det
            db = (haa * gb - hab * ga) / det
            a = np.clip(a - np.clip(da, -1.0, 1.0), *A_BOUNDS)
            b = np.clip(b - np.clip(db, -2.0, 2.0), *B_BOUNDS)
        if np.max(np.abs(theta - old)) < tol:
            break
    return theta, ItemParams(a, b)


def fit_ability(responses: np.ndarray, items: ItemParams, iterations: int = 25,
                prior_sd: float = PRIOR_THETA) -> np.ndarray:
    """MAP ability (prior N(0, 1)) of each row of [M, k] responses on items with known params."""
    y = np.nan_to_num(np.atleast_2d(np.asarray(responses, dtype=np.float64)), nan=0.0)
    theta = np.zeros(y.shape[0])
    for _ in range(iterations):
        p = items.prob(theta)
        grad = ((y - p) * items.a[None]).sum(axis=1) - theta / prior_sd ** 2
        hess = -(p * (1 - p) * items.a[None] ** 2).sum(axis=1) - 1 / prior_sd ** 2
        step = np.clip(grad / hess, -1.0, 1.0)
        theta = theta - step
        if np.max(np.abs(step)) < 1e-6:
            break
    return theta


def expected_mean(theta: np.ndarray, items: ItemParams, block: int = 4096) -> np.ndarray:
    """Mean over all items of P(correct | theta), in blocks of items (memory O(M * block))."""
    theta = np.asarray(theta, dtype=np.float64)
    total = np.zeros(len(theta))
    for start in range(0, len(items.a), block):
        total += items.take(np.arange(start, min(start + block, len(items.a)))).prob(theta).sum(1)
    return total / max(len(items.a), 1)


def pirt_estimate(anchor_responses: np.ndarray, anchor_items: ItemParams,
                  other_items: ItemParams) -> np.ndarray:
    """p-IRT: observed anchors plus IRT-predicted correctness on every other item, over all N."""
    y = np.nan_to_num(np.atleast_2d(np.asarray(anchor_responses, dtype=np.float64)), nan=0.0)
    theta = fit_ability(y, anchor_items)
    k, rest = y.shape[1], len(other_items.a)
    predicted = expected_mean(theta, other_items) * rest if rest else 0.0
    return (y.sum(axis=1) + predicted) / (k + rest)


def gp_blend(anchor_mean: np.ndarray, pirt: np.ndarray, lam: float) -> np.ndarray:
    """gp-IRT: lam * anchor mean + (1 - lam) * p-IRT."""
    return lam * np.asarray(anchor_mean) + (1.0 - lam) * np.asarray(pirt)


def gp_lambda(bias: float, variance: float, n_anchors: int) -> float:
    """lam = b^2 / (v/n + b^2): the anchor mean's weight in gp-IRT."""
    denominator = variance / max(n_anchors, 1) + bias ** 2
    return float(bias ** 2 / denominator) if denominator > 0 else 0.5


def fit_reference_irt(responses: np.ndarray, seed: int = 0, holdout: float = 0.2) -> dict:
    """The 2PL fits gp-IRT needs, on reference responses [M, N] only (independent of anchors).

    `items`: fitted on every reference; `held_out` / `items_rest`: a fit without `holdout` of
    the references, used to measure p-IRT's bias on models the fit has not seen.
    """
    y = np.nan_to_num(np.asarray(responses, dtype=np.float64), nan=0.0)
    m = y.shape[0]
    fits = {"items": fit_2pl(y)[1], "held_out": None, "items_rest": None}
    if m >= 5:
        order = np.random.default_rng(seed).permutation(m)
        n_out = max(1, int(round(holdout * m)))
        fits["held_out"] = np.sort(order[:n_out])
        fits["items_rest"] = fit_2pl(y[np.sort(order[n_out:])])[1]
    return fits


def gp_irt_setup(responses: np.ndarray, anchors: np.ndarray, weights: np.ndarray | None = None,
                 seed: int = 0, fits: dict | None = None) -> dict:
    """Everything gp-IRT needs at prediction time, fitted on reference responses [M, N] only.

    The bias b of p-IRT is its root mean square error on references left out of an IRT fit on
    the others (their p-IRT estimate from the anchors vs their actual mean over all N items);
    the item parameters kept are fitted on all references. `fits`: `fit_reference_irt` output,
    to share between anchor sets. Returns a JSON-able dict.
    """
    y = np.nan_to_num(np.asarray(responses, dtype=np.float64), nan=0.0)
    fits = fit_reference_irt(y, seed) if fits is None else fits
    n = y.shape[1]
    anchors = np.asarray(anchors, dtype=np.int64)
    k = len(anchors)
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, float) / np.sum(weights)
    others = np.setdiff1d(np.arange(n), anchors)
    bias = 0.0
    if fits["held_out"] is not None:
        out, items = fits["held_out"], fits["items_rest"]
        pirt = pirt_estimate(y[out][:, anchors], items.take(anchors), items.take(others))
        bias = float(np.sqrt(np.mean((pirt - y[out].mean(axis=1)) ** 2)))
    # v/n: variance of the (weighted) anchor mean = sum_j w_j^2 var_j, averaged over references
    ya = y[:, anchors]
    per_item_var = ((ya - (ya @ w)[:, None]) ** 2) @ w
    variance = float(np.mean(per_item_var) * k * np.sum(w ** 2))
    items = fits["items"]
    return {"anchor_items": items.take(anchors).to_json(), "other_items":
            items.take(others).to_json(), "weights": w.tolist(), "bias": bias,
            "variance": variance, "lambda": gp_lambda(bias, variance, k)}


def irt_ability(anchor_responses: np.ndarray, setup: dict) -> np.ndarray:
    """MAP ability from outcomes on the anchors (item parameters of a `gp_irt_setup`)."""
    y = np.nan_to_num(np.atleast_2d(np.asarray(anchor_responses, dtype=np.float64)), nan=0.0)
    return fit_ability(y, ItemParams.from_json(setup["anchor_items"]))


def irt_ability_sd(anchor_responses: np.ndarray, setup: dict) -> np.ndarray:
    """Posterior standard deviation of the ability (Laplace approximation at the MAP).

    Large when the anchors say little about the model, e.g. when it answers nearly every
    anchor right (beyond the items' difficulty range).
    """
    items = ItemParams.from_json(setup["anchor_items"])
    theta = irt_ability(anchor_responses, setup)
    p = items.prob(theta)
    information = (p * (1 - p) * items.a[None] ** 2).sum(axis=1) + 1 / PRIOR_THETA ** 2
    return 1.0 / np.sqrt(information)


def gp_irt_predict(anchor_responses: np.ndarray, setup: dict) -> np.ndarray:
    """gp-IRT estimate of the mean correctness over all N items from outcomes on the anchors."""
    y = np.nan_to_num(np.atleast_2d(np.asarray(anchor_responses, dtype=np.float64)), nan=0.0)
    pirt = pirt_estimate(y, ItemParams.from_json(setup["anchor_items"]),
                         ItemParams.from_json(setup["other_items"]))
    return gp_blend(y @ np.asarray(setup["weights"]), pirt, setup["lambda"])
