"""Two-parameter logistic IRT, one- and multidimensional: the joint MAP fits and abilities.

Model: P(model m answers item i correctly) = sigmoid(a_i . theta_m - b_i), with a discrimination
vector a_i and an ability theta_m in R^D and an intercept b_i. Two fits:

`fit_2pl`, the classic one-dimensional 2PL: priors theta ~ N(0, 1), a ~ N(1, 1), b ~ N(0, 3^2),
found by alternating vectorised Newton steps (one per model for the abilities, one 2-D step per
item for (a, b)), the abilities standardised after every sweep so the scale is identified. 3400
models x 150 items or 28 models x 12000 items fit in well under a second.

`fit_mirt`, the D-dimensional 2PL (M2PL), py-irt's `multidim_2pl`
(logit = sum_d gamma_id (theta_md - beta_id)) with the intercept b_i = gamma_i . beta_i. The
priors are Gaussian, as py-irt's hierarchical ones are at given values of their scale
parameters: theta ~ N(0, I), a_i ~ N(0, s^2 I) with s the `prior_a_sd` of the fit (py-irt's
hyperprior puts its mean at 1; `gp.fit_reference_irt` chooses s by validation on the
references), b_i ~ N(0, PRIOR_B_SD^2). The variances are fixed: a joint MAP that also estimates
them (py-irt's variational fit averages over the abilities instead) grows the discriminations
until it predicts unseen models' responses worse than a constant. One L-BFGS run fits every
ability and item parameter jointly, with analytic gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

PRIOR_B_SD = 3.0
MAX_ITER = 150
PRIOR_A_MEAN, PRIOR_A_SD = 1.0, 1.0   # the classic 2PL's discriminations
A_BOUNDS = (0.05, 8.0)
B_BOUNDS = (-15.0, 15.0)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def responses_array(responses: np.ndarray) -> np.ndarray:
    """Responses as a float [M, N] array, NaN counted wrong."""
    return np.nan_to_num(np.atleast_2d(np.asarray(responses, dtype=np.float64)), nan=0.0)


@dataclass(frozen=True)
class ItemParams:
    """M2PL item parameters: P(correct | theta) = sigmoid(a . theta - b); a [N, D], b [N]."""

    a: np.ndarray
    b: np.ndarray

    @property
    def dims(self) -> int:
        return self.a.shape[1]

    def take(self, index: np.ndarray) -> "ItemParams":
        return ItemParams(self.a[index], self.b[index])

    def logits(self, theta: np.ndarray) -> np.ndarray:
        """[M, N] logits for abilities theta [M, D]."""
        return np.asarray(theta, dtype=np.float64).reshape(-1, self.dims) @ self.a.T - self.b

    def prob(self, theta: np.ndarray) -> np.ndarray:
        """[M, N] probabilities of a correct answer for abilities theta [M, D]."""
        return sigmoid(self.logits(theta))

    def to_json(self) -> dict:
        return {"a": self.a.tolist(), "b": self.b.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> "ItemParams":
        """Item parameters from `to_json`; a flat `a` is one dimension (no items: [0, 1])."""
        b = np.asarray(data["b"], dtype=np.float64)
        a = np.asarray(data["a"], dtype=np.float64)
        return cls(a.reshape(len(b), a.shape[1] if a.ndim == 2 else 1), b)


def _start(y: np.ndarray, dims: int) -> tuple[np.ndarray, ItemParams]:
    """Deterministic start: the leading singular vectors of the centred responses."""
    p_item = np.clip(y.mean(axis=0), 0.02, 0.98)
    u, s, vt = np.linalg.svd(y - y.mean(axis=0), full_matrices=False)
    k = min(dims, len(s))
    theta = np.zeros((y.shape[0], dims))
    a = np.zeros((y.shape[1], dims))
    theta[:, :k] = u[:, :k] * np.sqrt(y.shape[0])
    a[:, :k] = 4.0 * vt[:k].T * s[:k] / np.sqrt(y.shape[0])
    sign = np.where(a.sum(axis=0) < 0, -1.0, 1.0)
    b = -np.log(p_item / (1 - p_item)) + a @ theta.mean(axis=0)
    return theta * sign, ItemParams(a * sign, b)


def _objective(x: np.ndarray, y: np.ndarray, dims: int, a_sd: float
               ) -> tuple[float, np.ndarray]:
    """Negative log posterior and its gradient over (theta, a, b) packed in x."""
    m, n = y.shape
    theta = x[:m * dims].reshape(m, dims)
    a = x[m * dims:(m + n) * dims].reshape(n, dims)
    b = x[(m + n) * dims:]
    z = theta @ a.T - b
    r = sigmoid(z) - y
    value = (np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(theta ** 2)
             + 0.5 * np.sum(a ** 2) / a_sd ** 2 + 0.5 * np.sum(b ** 2) / PRIOR_B_SD ** 2)
    grad = np.concatenate([(r @ a + theta).ravel(), (r.T @ theta + a / a_sd ** 2).ravel(),
                           -r.sum(axis=0) + b / PRIOR_B_SD ** 2])
    return float(value), grad


def fit_mirt(responses: np.ndarray, dims: int = 1, prior_a_sd: float = 1.0
             ) -> tuple[np.ndarray, ItemParams]:
    """Joint MAP fit of a D-dimensional 2PL to [M, N] responses in [0, 1] (NaN counted wrong),
    the discriminations' prior N(0, prior_a_sd^2).

    Returns (theta [M, D], ItemParams). Deterministic: it starts from the responses' leading
    singular vectors, each dimension's sign set so its discriminations sum positive. At most
    MAX_ITER L-BFGS iterations: on thousands of models and ~100 items the fit converges in
    about that many.
    """
    y = responses_array(responses)
    m, n = y.shape
    theta, items = _start(y, dims)
    x = minimize(_objective, np.concatenate([theta.ravel(), items.a.ravel(), items.b]),
                 args=(y, dims, prior_a_sd), jac=True, method="L-BFGS-B",
                 options={"maxiter": MAX_ITER}).x
    return (x[:m * dims].reshape(m, dims),
            ItemParams(x[m * dims:(m + n) * dims].reshape(n, dims), x[(m + n) * dims:]))


def fit_2pl(responses: np.ndarray, iterations: int = 60, tol: float = 1e-4
            ) -> tuple[np.ndarray, ItemParams]:
    """Joint MAP fit of the classic one-dimensional 2PL to [M, N] responses in [0, 1] (NaN
    counted wrong). Returns (theta [M], ItemParams with [N, 1] discriminations)."""
    y = responses_array(responses)
    acc = y.mean(axis=1)
    theta = (acc - acc.mean()) / (acc.std() + 1e-9)
    p_item = np.clip(y.mean(axis=0), 0.02, 0.98)
    a, b = np.ones(y.shape[1]), -np.log(p_item / (1 - p_item))
    for _ in range(iterations):
        old = theta.copy()
        theta = _ability_steps(y, theta, a, b)
        mu, sd = theta.mean(), theta.std() + 1e-9
        theta = (theta - mu) / sd
        a, b = a * sd, b - a * mu          # a*theta_old - b = (a*sd)*theta_new - (b - a*mu)
        a, b = _item_steps(y, theta, a, b)
        if np.max(np.abs(theta - old)) < tol:
            break
    return theta, ItemParams(a[:, None], b)


def _ability_steps(y: np.ndarray, theta: np.ndarray, a: np.ndarray, b: np.ndarray,
                   steps: int = 2) -> np.ndarray:
    """Damped Newton steps on every model's ability (prior N(0, 1)) at fixed items."""
    for _ in range(steps):
        p = sigmoid(theta[:, None] * a[None] - b[None])
        grad = ((y - p) * a[None]).sum(axis=1) - theta
        hess = -(p * (1 - p) * a[None] ** 2).sum(axis=1) - 1.0
        theta = theta - np.clip(grad / hess, -1.0, 1.0)
    return theta


def _item_steps(y: np.ndarray, theta: np.ndarray, a: np.ndarray, b: np.ndarray,
                steps: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """2-D Newton steps on every item's (a, b) at fixed abilities, within the bounds."""
    for _ in range(steps):
        p = sigmoid(theta[:, None] * a[None] - b[None])
        r, w = y - p, p * (1 - p)
        ga = (r * theta[:, None]).sum(axis=0) - (a - PRIOR_A_MEAN) / PRIOR_A_SD ** 2
        gb = -r.sum(axis=0) - b / PRIOR_B_SD ** 2
        haa = -(w * theta[:, None] ** 2).sum(axis=0) - 1 / PRIOR_A_SD ** 2
        hbb = -w.sum(axis=0) - 1 / PRIOR_B_SD ** 2
        hab = (w * theta[:, None]).sum(axis=0)
        det = haa * hbb - hab ** 2
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        a = np.clip(a - np.clip(da, -1.0, 1.0), *A_BOUNDS)
        b = np.clip(b - np.clip(db, -2.0, 2.0), *B_BOUNDS)
    return a, b


def fit_ability(responses: np.ndarray, items: ItemParams, iterations: int = 100) -> np.ndarray:
    """MAP abilities [M, D] (prior N(0, I)) of each row of [M, k] responses on known items.

    Newton steps (at most 1 long in each coordinate), each halved until the row's log posterior
    does not fall: the posterior is concave, so every row converges (a plain Newton step can
    cycle between two points in several dimensions).
    """
    y = responses_array(responses)
    theta = np.zeros((y.shape[0], items.dims))
    value = _log_posterior(y, theta, items)
    for _ in range(iterations):
        p = items.prob(theta)
        grad = (y - p) @ items.a - theta
        step = np.linalg.solve(information(theta, items, p), grad[..., None])[..., 0]
        step *= np.minimum(1.0, 1.0 / np.maximum(np.abs(step).max(axis=1), 1e-12))[:, None]
        if np.max(np.abs(step)) < 1e-6:
            break
        theta, value = _backtrack(y, theta, value, step, items)
    return theta


def _log_posterior(y: np.ndarray, theta: np.ndarray, items: ItemParams) -> np.ndarray:
    """[M] log posterior of each row's ability (up to a constant), prior N(0, I)."""
    z = items.logits(theta)
    return (y * z - np.logaddexp(0.0, z)).sum(axis=1) - 0.5 * (theta ** 2).sum(axis=1)


def _backtrack(y: np.ndarray, theta: np.ndarray, value: np.ndarray, step: np.ndarray,
               items: ItemParams, halvings: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """(theta, log posterior) after each row's step, halved until the row's log posterior does
    not fall (beyond rounding); a row whose every halving falls keeps its ability."""
    step = step.copy()
    tolerance = 1e-12 * (1.0 + np.abs(value))
    for _ in range(halvings):
        candidate = theta + step
        new = _log_posterior(y, candidate, items)
        falls = new < value - tolerance
        if not falls.any():
            break
        step[falls] *= 0.5
    return np.where(falls[:, None], theta, candidate), np.where(falls, value, new)


def information(theta: np.ndarray, items: ItemParams, p: np.ndarray | None = None
                ) -> np.ndarray:
    """[M, D, D] posterior information of the abilities: sum_i p_i (1 - p_i) a_i a_i^T + I."""
    p = items.prob(theta) if p is None else p
    fisher = np.einsum("mk,kd,ke->mde", p * (1 - p), items.a, items.a)
    return fisher + np.eye(items.dims)


def expected_mean(theta: np.ndarray, items: ItemParams, block: int = 4096) -> np.ndarray:
    """Mean over all items of P(correct | theta), in blocks of items (memory O(M * block))."""
    theta = np.asarray(theta, dtype=np.float64).reshape(-1, items.dims)
    total = np.zeros(len(theta))
    n = len(items.b)
    for start in range(0, n, block):
        total += items.take(np.arange(start, min(start + block, n))).prob(theta).sum(axis=1)
    return total / max(n, 1)
