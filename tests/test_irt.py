"""The 2PL IRT fits (classic 1-D and multidimensional), the choice of the IRT's shape, and the
tinyBenchmarks estimators (p-IRT, gp-IRT)."""

import json
import time

import numpy as np
import pytest

from disco_ray.irt import (CLASSIC, MULTIDIM, ItemParams, choose_shape, fit_2pl, fit_ability,
                           fit_mirt, fit_reference_irt, gp_blend, gp_irt_predict, gp_irt_setup,
                           gp_lambda, irt_ability, irt_ability_sd, pirt_estimate)


def _simulate(m, n, dims=1, seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(m, dims))
    a = rng.lognormal(0.0, 0.3, size=(n, dims)) * rng.choice([-1.0, 1.0], size=(n, dims))
    a[:, 0] = np.abs(a[:, 0])
    b = rng.normal(0.0, 1.2, size=n)
    p = 1 / (1 + np.exp(-(theta @ a.T - b)))
    return theta, ItemParams(a, b), p, (rng.random((m, n)) < p).astype(float)


@pytest.mark.parametrize("fit", [fit_2pl, lambda y: fit_mirt(y, 1)], ids=["classic", "m2pl"])
def test_both_fits_recover_known_1d_parameters_fast(fit):
    theta, items, _, y = _simulate(3000, 150)
    start = time.perf_counter()
    theta_hat, fitted = fit(y)
    assert time.perf_counter() - start < 20
    assert fitted.a.shape == (150, 1)
    assert np.corrcoef(theta[:, 0], np.ravel(theta_hat))[0, 1] > 0.9
    assert np.corrcoef(items.a[:, 0], fitted.a[:, 0])[0, 1] > 0.9
    assert np.corrcoef(items.b, fitted.b)[0, 1] > 0.9


def test_fit_recovers_a_three_dimensional_model_deterministically():
    _, _, p, y = _simulate(2000, 120, dims=3, seed=4)
    theta_hat, fitted = fit_mirt(y, 3)
    assert theta_hat.shape == (2000, 3) and fitted.a.shape == (120, 3)
    # the fit is identified up to a rotation of theta: compare the predicted probabilities
    assert np.corrcoef(p.ravel(), fitted.prob(theta_hat).ravel())[0, 1] > 0.95
    one_dim = fit_mirt(y, 1)
    assert (np.corrcoef(p.ravel(), one_dim[1].prob(one_dim[0]).ravel())[0, 1]
            < np.corrcoef(p.ravel(), fitted.prob(theta_hat).ravel())[0, 1] - 0.05)
    again = fit_mirt(y, 3)
    assert np.array_equal(theta_hat, again[0]) and np.array_equal(fitted.a, again[1].a)


def test_shape_is_chosen_per_anchor_set_on_references_left_out_of_the_fit():
    _, _, _, y3 = _simulate(1200, 100, dims=3, seed=5)
    _, _, _, y1 = _simulate(1200, 100, dims=1, seed=6)
    anchors = np.arange(0, 100, 4)
    others = np.setdiff1d(np.arange(100), anchors)
    three = fit_reference_irt(y3, candidates=MULTIDIM)
    one = fit_reference_irt(y1, candidates=MULTIDIM)
    assert set(three["without_validation"]) == set(MULTIDIM)
    # the validation sets: a random fifth and the strongest tenth, both outside every fit
    assert len(three["held_out"]) == 240 and len(three["strongest"]) == 120
    strength = y3.mean(axis=1)
    assert strength[three["strongest"]].min() >= np.delete(strength, three["strongest"]).max()
    (d3, _), errors3 = choose_shape(three, anchors, others)
    (d1, _), errors1 = choose_shape(one, anchors, others)
    assert d3 > 1 and d1 <= 2
    assert min(e for (d, _), e in errors3.items() if d > 1) < min(
        e for (d, _), e in errors3.items() if d == 1)
    setup = gp_irt_setup(y3, anchors, fits=three)
    assert setup["shape"][0] == d3 and len(setup["shape_error"]) == len(MULTIDIM)
    assert ItemParams.from_json(setup["anchor_items"]).dims == d3
    json.dumps(setup)


def test_the_classic_setup_holds_out_a_random_fifth_and_chooses_nothing():
    _, _, _, y = _simulate(500, 60, seed=10)
    fits = fit_reference_irt(y, seed=3)
    assert fits["candidates"] == (CLASSIC,) and fits["strongest"] is None
    assert len(fits["held_out"]) == 100
    rest = np.setdiff1d(np.arange(500), fits["held_out"])
    assert np.array_equal(fits["without_validation"][CLASSIC].b, fit_2pl(y[rest])[1].b)
    setup = gp_irt_setup(y, np.arange(0, 60, 3), fits=fits)
    assert setup["shape"] == [1, None] and setup["shape_error"] == []
    assert np.allclose(setup["anchor_items"]["b"], fit_2pl(y)[1].b[::3])


def test_ability_from_anchors_tracks_true_ability_with_its_posterior_sd():
    theta, _, _, y = _simulate(2000, 120, seed=1)
    anchors = np.arange(0, 120, 3)
    setup = gp_irt_setup(y[:1500], anchors)
    estimate = irt_ability(y[1500:, anchors], setup)
    assert estimate.shape == (500,)
    assert np.corrcoef(theta[1500:, 0], estimate)[0, 1] > 0.8
    # a model right on every anchor is the least pinned down
    sd = irt_ability_sd(np.vstack([y[1500:1510, anchors], np.ones(len(anchors))]), setup)
    assert sd.shape == (11,) and np.argmax(sd) == 10
    multidim = gp_irt_setup(y[:1500], anchors, fits=fit_reference_irt(
        y[:1500], candidates=((2, 1.0),)))
    with pytest.raises(ValueError, match="one-dimensional"):
        irt_ability(y[1500:, anchors], multidim)


def test_abilities_of_a_d_dimensional_irt_come_from_the_anchors():
    theta, _, _, y = _simulate(2000, 120, dims=2, seed=1)
    _, items = fit_mirt(y[:1500], 2)
    anchors = np.arange(0, 120, 3)
    estimate = fit_ability(y[1500:, anchors], items.take(anchors))
    assert estimate.shape == (500, 2)
    truth = y[1500:].mean(axis=1)
    assert np.corrcoef(items.prob(estimate).mean(axis=1), truth)[0, 1] > 0.8


def test_abilities_reach_the_posterior_maximum_on_sharp_items_in_ten_dimensions():
    """Discriminations as large as a fitted 10-dimensional IRT's: a plain Newton step overshoots
    and cycles there (a gradient of about 25 left after 30 steps); the fit still converges."""
    rng = np.random.default_rng(0)
    items = ItemParams(rng.normal(0.0, 4.0, size=(25, 10)), rng.normal(0.0, 4.0, size=25))
    y = (rng.random((50, 25)) < 0.6).astype(float)
    theta = fit_ability(y, items)
    gradient = (y - items.prob(theta)) @ items.a - theta
    assert np.abs(gradient).max() < 1e-4


def test_every_sample_an_anchor_leaves_no_other_items_and_still_predicts():
    _, _, _, y = _simulate(300, 30, dims=2, seed=9)
    fits = fit_reference_irt(y[:250], candidates=MULTIDIM)
    setup = gp_irt_setup(y[:250], np.arange(30), fits=fits)
    assert setup["other_items"] == {"a": [], "b": []}
    targets = y[250:]
    # p-IRT is the observed mean; gp-IRT blends it with itself
    assert np.allclose(gp_irt_predict(targets, setup), targets.mean(axis=1))


def test_item_params_read_a_flat_discrimination_as_one_dimension():
    items = ItemParams.from_json({"a": [1.0, 2.0], "b": [0.0, 1.0]})
    assert items.a.shape == (2, 1) and items.dims == 1
    assert np.allclose(items.prob(np.array([[1.0]])), 1 / (1 + np.exp(-np.array([1.0, 1.0]))))


def test_gp_irt_blend_ends_are_the_anchor_mean_and_p_irt():
    # lam is the anchor mean's weight: lam = b^2 / (v/n + b^2). A heavily biased IRT (b -> inf)
    # gives lam -> 1, the anchor mean; an unbiased one (b -> 0) gives lam -> 0, p-IRT.
    assert gp_lambda(bias=1e6, variance=0.25, n_anchors=50) > 0.999
    assert gp_lambda(bias=0.0, variance=0.25, n_anchors=50) == 0.0
    mean, pirt = np.array([0.3, 0.6]), np.array([0.5, 0.4])
    assert np.allclose(gp_blend(mean, pirt, 1.0), mean)
    assert np.allclose(gp_blend(mean, pirt, 0.0), pirt)


@pytest.mark.parametrize("candidates", [(CLASSIC,), MULTIDIM], ids=["classic", "multidim"])
def test_gp_irt_predict_uses_the_setup_weight(candidates):
    _, _, _, y = _simulate(300, 200, dims=2, seed=2)
    anchors = np.arange(0, 200, 10)
    setup = gp_irt_setup(y[:250], anchors, fits=fit_reference_irt(y[:250], candidates=candidates))
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
    _, _, _, y = _simulate(200, 40, dims=2, seed=3)
    _, items = fit_mirt(y, 2)
    anchors, others = np.arange(40), np.array([], dtype=int)
    # with every item an anchor, p-IRT is exactly the observed mean
    assert np.allclose(pirt_estimate(y[:, anchors], items.take(anchors), items.take(others)),
                       y.mean(axis=1))
