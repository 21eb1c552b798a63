"""2PL IRT fit and the tinyBenchmarks estimators (p-IRT, gp-IRT)."""

import time

import numpy as np

from disco_ray.irt import (fit_2pl, fit_ability, gp_blend, gp_irt_predict, gp_irt_setup,
                           gp_lambda, pirt_estimate)


def _simulate(m, n, seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=m)
    a = rng.lognormal(0.0, 0.3, size=n)
    b = rng.normal(0.0, 1.2, size=n)
    p = 1 / (1 + np.exp(-(theta[:, None] * a[None] - b[None])))
    return theta, a, b, (rng.random((m, n)) < p).astype(float)


def test_fit_recovers_known_2pl_parameters_fast():
    theta, a, b, y = _simulate(3000, 150)
    start = time.perf_counter()
    theta_hat, items = fit_2pl(y)
    assert time.perf_counter() - start < 10
    assert np.corrcoef(theta, theta_hat)[0, 1] > 0.9
    assert np.corrcoef(a, items.a)[0, 1] > 0.9
    assert np.corrcoef(b, items.b)[0, 1] > 0.9


def test_ability_from_anchors_tracks_true_ability():
    theta, a, b, y = _simulate(2000, 120, seed=1)
    _, items = fit_2pl(y[:1500])
    anchors = np.arange(0, 120, 3)
    estimate = fit_ability(y[1500:, anchors], items.take(anchors))
    assert np.corrcoef(theta[1500:], estimate)[0, 1] > 0.8


def test_gp_irt_blend_ends_are_the_anchor_mean_and_p_irt():
    # lam is the anchor mean's weight: lam = b^2 / (v/n + b^2). A heavily biased IRT (b -> inf)
    # gives lam -> 1, the anchor mean; an unbiased one (b -> 0) gives lam -> 0, p-IRT.
    assert gp_lambda(bias=1e6, variance=0.25, n_anchors=50) > 0.999
    assert gp_lambda(bias=0.0, variance=0.25, n_anchors=50) == 0.0
    mean, pirt = np.array([0.3, 0.6]), np.array([0.5, 0.4])
    assert np.allclose(gp_blend(mean, pirt, 1.0), mean)
    assert np.allclose(gp_blend(mean, pirt, 0.0), pirt)


def test_gp_irt_predict_uses_the_setup_weight():
    _, _, _, y = _simulate(300, 200, seed=2)
    anchors = np.arange(0, 200, 10)
    setup = gp_irt_setup(y[:250], anchors)
    assert 0.0 <= setup["lambda"] <= 1.0
    targets = y[250:, anchors]
    setup_mean = {**setup, "lambda": 1.0}
    assert np.allclose(gp_irt_predict(targets, setup_mean), targets.mean(axis=1))
    # gp-IRT estimates held-out models' mean over all items better than the anchor mean
    truth = y[250:].mean(axis=1)
    error = np.mean(np.abs(gp_irt_predict(targets, setup) - truth))
    assert error < np.mean(np.abs(targets.mean(axis=1) - truth))
    assert error < 0.08


def test_pirt_plugs_in_observed_anchor_outcomes():
    _, _, _, y = _simulate(200, 40, seed=3)
    _, items = fit_2pl(y)
    anchors, others = np.arange(40), np.array([], dtype=int)
    # with every item an anchor, p-IRT is exactly the observed mean
    assert np.allclose(pirt_estimate(y[:, anchors], items.take(anchors), items.take(others)),
                       y.mean(axis=1))
