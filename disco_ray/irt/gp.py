"""The tinyBenchmarks estimators (p-IRT, gp-IRT) on a multidimensional 2PL (`irt.model`).

Estimators (Polo et al., "tinyBenchmarks", 2024), for a target that answered the anchors only:
  * anchor mean: sum_j w_j y_j (w: cluster-size weights, or 1/k for random anchors);
  * p-IRT: ability theta fitted on the anchors, then the mean over all N items with the
    observed anchors' outcomes plugged in: (sum_{anchors} y_i + sum_{others} P_i(theta)) / N;
  * gp-IRT: lam * anchor mean + (1 - lam) * p-IRT with lam = b^2 / (v/n + b^2), where b is the
    p-IRT bias (root mean square error) measured on reference models held out of the IRT fit,
    v the variance of per-item correctness and n the number of anchors. So lam -> 1 (the anchor
    mean) when p-IRT is badly biased and lam -> 0 (p-IRT) when the anchor mean is noisy.
The IRT's shape, its dimension D among `DIMS` and its discriminations' prior SD among
`PRIOR_A_SDS`, is chosen per anchor set on the references only: the one whose p-IRT estimates
references left out of its fit best, both a random share of them and the strongest
(`choose_shape`); D = 1 is the classic 2PL.
"""

from __future__ import annotations

import numpy as np

from disco_ray.irt.model import (ItemParams, expected_mean, fit_ability, fit_mirt, information,
                                 responses_array)

Shape = tuple[int, float]   # an IRT candidate: (dimension, prior SD of the discriminations)
DIMS = (1, 2, 5, 10)
PRIOR_A_SDS = (0.5, 1.0)
CANDIDATES: tuple[Shape, ...] = tuple((d, s) for d in DIMS for s in PRIOR_A_SDS)
HOLDOUT = 0.2   # the random share of the references held out to measure p-IRT's error
STRONGEST = 0.1   # the strongest share held out to measure it beyond the references


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
                      candidates: tuple[Shape, ...] = CANDIDATES) -> dict:
    """The anchor-independent IRT fits gp-IRT chooses among, on reference responses [M, N].

    Two validation sets of references: `held_out`, a random `HOLDOUT` share drawn by `seed`,
    and `strongest`, the `STRONGEST` share by mean outcome. `without_validation[shape]`: per
    candidate shape (dimension, discriminations' prior SD), item parameters fitted on the
    references in neither set. Fits on every reference, and without other sets of rows, are
    added on demand (`full_items`, `items_without`). With fewer than 5 references: only the
    first candidate and no validation sets.
    """
    y = responses_array(responses)
    m = y.shape[0]
    fits: dict = {"responses": y, "candidates": candidates if m >= 5 else candidates[:1],
                  "full": {}, "without": {}, "held_out": None, "strongest": None}
    if m < 5:
        return fits
    order = np.random.default_rng(seed).permutation(m)
    fits["held_out"] = np.sort(order[:max(1, int(round(HOLDOUT * m)))])
    strength = np.argsort(y.mean(axis=1), kind="stable")
    fits["strongest"] = np.sort(strength[-max(1, int(round(STRONGEST * m))):])
    outside = np.setdiff1d(np.arange(m), np.union1d(fits["held_out"], fits["strongest"]))
    fits["without_validation"] = {shape: fit_mirt(y[outside], *shape)[1] for shape in candidates}
    return fits


def full_items(fits: dict, shape: Shape) -> ItemParams:
    """The fit of `shape` on every reference of `fits` (fitted once, then kept in it)."""
    if shape not in fits["full"]:
        fits["full"][shape] = fit_mirt(fits["responses"], *shape)[1]
    return fits["full"][shape]


def items_without(fits: dict, shape: Shape, rows: np.ndarray) -> ItemParams:
    """The fit of `shape` on the references of `fits` outside `rows` (kept in it)."""
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    key = (shape, rows.tobytes())
    if key not in fits["without"]:
        fits["without"][key] = fit_mirt(np.delete(fits["responses"], rows, axis=0), *shape)[1]
    return fits["without"][key]


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
    {shape: that error}); the first candidate without validation sets."""
    if fits["held_out"] is None:
        return fits["candidates"][0], {}
    y = fits["responses"]
    errors = {shape: 0.5 * sum(_pirt_rmse(y, fits[rows], items, anchors, others)
                               for rows in ("held_out", "strongest"))
              for shape, items in fits["without_validation"].items()}
    return min(errors, key=errors.get), errors


def gp_irt_setup(responses: np.ndarray, anchors: np.ndarray, weights: np.ndarray | None = None,
                 seed: int = 0, fits: dict | None = None) -> dict:
    """Everything gp-IRT needs at prediction time, fitted on reference responses [M, N] only.

    The IRT's shape is chosen for these anchors (`choose_shape`). The bias b of p-IRT is its
    root mean square error on the randomly held-out references (fit without them); the item
    parameters kept are fitted on all references. `fits`: `fit_reference_irt` output, to share
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
    return {**_item_entries(full_items(fits, shape), anchors, others), "anchors": anchors.tolist(),
            "weights": w.tolist(), "bias": bias, "variance": variance,
            "lambda": gp_lambda(bias, variance, k), "shape": list(shape),
            "shape_error": [[*s, e] for s, e in errors.items()]}


def _item_entries(items: ItemParams, anchors: np.ndarray, others: np.ndarray) -> dict:
    return {"anchor_items": items.take(anchors).to_json(),
            "other_items": items.take(others).to_json()}


def setup_without(setup: dict, fits: dict, rows: np.ndarray) -> dict:
    """`setup` with its item parameters refitted on the references outside `rows` (same
    shape, bias and weight), for validating a member on `rows` without their outcomes."""
    anchors = np.asarray(setup["anchors"], dtype=np.int64)
    others = np.setdiff1d(np.arange(fits["responses"].shape[1]), anchors)
    shape = (int(setup["shape"][0]), float(setup["shape"][1]))
    return {**setup, **_item_entries(items_without(fits, shape, rows), anchors, others)}


def irt_expected_score(anchor_responses: np.ndarray, setup: dict, block: int = 4096
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The ability read on the score scale: each model's expected mean correctness over all N
    items at its MAP ability from the anchors (item parameters of a `gp_irt_setup`), and that
    expectation's posterior SD (Laplace approximation at the MAP, delta method).

    One number per model whatever the IRT's dimension; the SD is large when the anchors say
    little about the model, e.g. when it answers nearly every anchor right.
    """
    anchor_items = ItemParams.from_json(setup["anchor_items"])
    parts = [anchor_items, ItemParams.from_json(setup["other_items"])]
    parts = [part for part in parts if len(part.b)]   # no other items when all are anchors
    items = ItemParams(np.vstack([part.a for part in parts]),
                       np.concatenate([part.b for part in parts]))
    theta = fit_ability(anchor_responses, anchor_items)
    n = len(items.b)
    score, gradient = np.zeros(len(theta)), np.zeros(theta.shape)
    for start in range(0, n, block):
        part = items.take(np.arange(start, min(start + block, n)))
        p = part.prob(theta)
        score += p.sum(axis=1)
        gradient += (p * (1 - p)) @ part.a
    score, gradient = score / n, gradient / n
    covariance_times = np.linalg.solve(information(theta, anchor_items),
                                       gradient[..., None])[..., 0]
    return score, np.sqrt(np.maximum(np.sum(gradient * covariance_times, axis=1), 0.0))


def gp_irt_predict(anchor_responses: np.ndarray, setup: dict) -> np.ndarray:
    """gp-IRT estimate of the mean correctness over all N items from outcomes on the anchors."""
    y = responses_array(anchor_responses)
    pirt = pirt_estimate(y, ItemParams.from_json(setup["anchor_items"]),
                         ItemParams.from_json(setup["other_items"]))
    return gp_blend(y @ np.asarray(setup["weights"]), pirt, setup["lambda"])
