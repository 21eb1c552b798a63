"""The tinyBenchmarks estimators (p-IRT, gp-IRT) on a 2PL IRT (`irt.model`) of the references.

Estimators (Polo et al., "tinyBenchmarks", 2024), for a target that answered the anchors only:
  * anchor mean: sum_j w_j y_j (w: cluster-size weights, or 1/k for random anchors);
  * p-IRT: ability theta fitted on the anchors, then the mean over all N items with the
    observed anchors' outcomes plugged in: (sum_{anchors} y_i + sum_{others} P_i(theta)) / N;
  * gp-IRT: lam * anchor mean + (1 - lam) * p-IRT with lam = b^2 / (v/n + b^2), where b is the
    p-IRT bias (root mean square error) measured on reference models held out of the IRT fit,
    v the variance of per-item correctness and n the number of anchors. So lam -> 1 (the anchor
    mean) when p-IRT is badly biased and lam -> 0 (p-IRT) when the anchor mean is noisy.
The IRT is one of a set of candidate shapes: the classic 1-D 2PL (`CLASSIC`) or the
multidimensional ones (`MULTIDIM`: dimension x the discriminations' prior SD). With several
candidates the shape is chosen per anchor set on the references only: the one whose p-IRT
estimates references left out of its fit best, both a random share of them and the strongest
(`choose_shape`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from disco_ray.irt.model import (ItemParams, expected_mean, fit_2pl, fit_ability, fit_mirt,
                                 information, responses_array)


class Shape(NamedTuple):
    """An IRT candidate: its dimension and its discriminations' prior SD (None: the classic
    2PL of `model.fit_2pl`, discriminations ~ N(1, 1))."""

    dims: int
    prior_a_sd: float | None


CLASSIC = Shape(1, None)
MULTIDIM: tuple[Shape, ...] = tuple(Shape(d, s) for d in (1, 2, 5, 10) for s in (0.5, 1.0))
HOLDOUT = 0.2   # the random share of the references held out to measure p-IRT's error
STRONGEST = 0.1   # the strongest share held out to measure it beyond the references


def fit_items(responses: np.ndarray, shape: Shape) -> ItemParams:
    """Item parameters of `shape` fitted to [M, N] responses."""
    dims, prior_a_sd = shape
    return fit_2pl(responses)[1] if prior_a_sd is None else fit_mirt(responses, dims, prior_a_sd)[1]


def pirt_estimate(anchor_responses: np.ndarray, anchor_items: ItemParams,
                  other_items: ItemParams) -> np.ndarray:
    """p-IRT: observed anchors plus IRT-predicted correctness on every other item, over all N."""
    y = responses_array(anchor_responses)
    theta = fit_ability(y, anchor_items)
    k, rest = y.shape[1], len(other_items.b)
    predicted = expected_mean(theta, other_items) * rest if rest else 0.0
    return (y.sum(axis=1) + predicted) / (k + rest)


def gp_blend(anchor_mean: np.ndarray, pirt: np.ndarray, lam: float) -> np.ndarray:
    """gp-IRT: lam * anchor mean + (1 - lam) * p-IRT."""
    return lam * np.asarray(anchor_mean) + (1.0 - lam) * np.asarray(pirt)


def gp_lambda(bias: float, variance: float, n_anchors: int) -> float:
    """lam = b^2 / (v/n + b^2): the anchor mean's weight in gp-IRT."""
    denominator = variance / max(n_anchors, 1) + bias ** 2
    return float(bias ** 2 / denominator) if denominator > 0 else 0.5


def fit_reference_irt(responses: np.ndarray, seed: int = 0,
                      candidates: tuple[Shape, ...] = (CLASSIC,)) -> dict:
    """The anchor-independent IRT fits gp-IRT chooses among, on reference responses [M, N].

    Validation sets of references: `held_out`, a random `HOLDOUT` share drawn by `seed`, and,
    when there is a shape to choose, `strongest`, the `STRONGEST` share by mean outcome.
    `without_validation[shape]`: per candidate, item parameters fitted on the references in
    neither set. Fits on every reference are added on demand (`full_items`). With fewer than 5
    references: only the first candidate and no validation sets.
    """
    y = responses_array(responses)
    m = y.shape[0]
    fits: dict = {"responses": y, "candidates": candidates if m >= 5 else candidates[:1],
                  "full": {}, "held_out": None, "strongest": None, "without_validation": {}}
    if m < 5:
        return fits
    order = np.random.default_rng(seed).permutation(m)
    fits["held_out"] = np.sort(order[:max(1, int(round(HOLDOUT * m)))])
    excluded = fits["held_out"]
    if len(candidates) > 1:
        strength = np.argsort(y.mean(axis=1), kind="stable")
        fits["strongest"] = np.sort(strength[-max(1, int(round(STRONGEST * m))):])
        excluded = np.union1d(excluded, fits["strongest"])
    inside = np.setdiff1d(np.arange(m), excluded)
    fits["without_validation"] = {shape: fit_items(y[inside], shape) for shape in candidates}
    return fits


def full_items(fits: dict, shape: Shape) -> ItemParams:
    """The fit of `shape` on every reference of `fits` (fitted once, then kept in it)."""
    if shape not in fits["full"]:
        fits["full"][shape] = fit_items(fits["responses"], shape)
    return fits["full"][shape]


def _pirt_rmse(y: np.ndarray, rows: np.ndarray, items: ItemParams, anchors: np.ndarray,
               others: np.ndarray) -> float:
    """Root mean square error of p-IRT's estimate of `rows`' mean over all items from their
    anchors, with item parameters `items` fitted without them."""
    pirt = pirt_estimate(y[rows][:, anchors], items.take(anchors), items.take(others))
    return float(np.sqrt(np.mean((pirt - y[rows].mean(axis=1)) ** 2)))


def choose_shape(fits: dict, anchors: np.ndarray, others: np.ndarray
                 ) -> tuple[Shape, dict[Shape, float]]:
    """The candidate shape whose p-IRT, from these anchors, estimates unseen references best:
    the mean of its root mean square errors on `held_out` (models like the references) and on
    `strongest` (models beyond them), predicted by the fit without either set. Returns (shape,
    {shape: that error}); the first candidate when there is nothing to choose."""
    if fits["strongest"] is None:
        return fits["candidates"][0], {}
    y = fits["responses"]
    errors = {shape: 0.5 * sum(_pirt_rmse(y, fits[rows], items, anchors, others)
                               for rows in ("held_out", "strongest"))
              for shape, items in fits["without_validation"].items()}
    return min(errors, key=errors.get), errors


def gp_irt_setup(responses: np.ndarray, anchors: np.ndarray, weights: np.ndarray | None = None,
                 seed: int = 0, fits: dict | None = None) -> dict:
    """Everything gp-IRT needs at prediction time, fitted on reference responses [M, N] only.

    The IRT's shape is chosen for these anchors among the candidates of `fits`
    (`choose_shape`). The bias b of p-IRT is its root mean square error on the randomly
    held-out references (fit without them); the item parameters kept are fitted on all
    references. `fits`: `fit_reference_irt` output (the classic 2PL when None), to share
    between anchor sets. Returns a JSON-able dict.
    """
    y = responses_array(responses)
    fits = fit_reference_irt(y, seed) if fits is None else fits
    anchors = np.asarray(anchors, dtype=np.int64)
    k = len(anchors)
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, float) / np.sum(weights)
    others = np.setdiff1d(np.arange(y.shape[1]), anchors)
    shape, errors = choose_shape(fits, anchors, others)
    bias = 0.0 if fits["held_out"] is None else _pirt_rmse(
        y, fits["held_out"], fits["without_validation"][shape], anchors, others)
    # v/n: variance of the (weighted) anchor mean = sum_j w_j^2 var_j, averaged over references
    ya = y[:, anchors]
    per_item_var = ((ya - (ya @ w)[:, None]) ** 2) @ w
    variance = float(np.mean(per_item_var) * k * np.sum(w ** 2))
    items = full_items(fits, shape)
    return {"anchor_items": items.take(anchors).to_json(),
            "other_items": items.take(others).to_json(), "weights": w.tolist(), "bias": bias,
            "variance": variance, "lambda": gp_lambda(bias, variance, k), "shape": list(shape),
            "shape_error": [[*s, e] for s, e in errors.items()]}


def irt_ability(anchor_responses: np.ndarray, setup: dict) -> np.ndarray:
    """MAP ability [M] from outcomes on the anchors (a one-dimensional `gp_irt_setup`)."""
    return fit_ability(anchor_responses, _scalar_items(setup))[:, 0]


def irt_ability_sd(anchor_responses: np.ndarray, setup: dict) -> np.ndarray:
    """Posterior standard deviation of the ability (Laplace approximation at the MAP).

    Large when the anchors say little about the model, e.g. when it answers nearly every
    anchor right (beyond the items' difficulty range).
    """
    items = _scalar_items(setup)
    theta = fit_ability(anchor_responses, items)
    return 1.0 / np.sqrt(information(theta, items)[:, 0, 0])


def _scalar_items(setup: dict) -> ItemParams:
    items = ItemParams.from_json(setup["anchor_items"])
    if items.dims != 1:
        raise ValueError(f"the IRT ability is a number only for a one-dimensional IRT; this "
                         f"setup has {items.dims} dimensions")
    return items


def gp_irt_predict(anchor_responses: np.ndarray, setup: dict) -> np.ndarray:
    """gp-IRT estimate of the mean correctness over all N items from outcomes on the anchors."""
    y = responses_array(anchor_responses)
    pirt = pirt_estimate(y, ItemParams.from_json(setup["anchor_items"]),
                         ItemParams.from_json(setup["other_items"]))
    return gp_blend(y @ np.asarray(setup["weights"]), pirt, setup["lambda"])
