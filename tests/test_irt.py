"""Multidimensional 2PL IRT fit, the choice of its dimension, and the tinyBenchmarks
estimators (p-IRT, gp-IRT)."""

import json
import time

import numpy as np

from disco_ray.irt import (CANDIDATES, ItemParams, choose_shape, fit_ability, fit_mirt,
                           fit_reference_irt, gp_blend, gp_irt_predict, gp_irt_setup, gp_lambda,
                           irt_expected_score, pirt_estimate, setup_without)


def _simulate(m, n, dims=1, seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(m, dims))
    a = rng.lognormal(0.0, 0.3, size=(n, dims)) * rng.choice([-1.0, 1.0], size=(n, dims))
    a[:, 0] = np.abs(a[:, 0])
    b = rng.normal(0.0, 1.2, size=n)
    p = 1 / (1 + np.exp(-(theta @ a.T - b)))
    return theta, ItemParams(a, b), p, (rng.random((m, n)) < p).astype(float)


def test_fit_recovers_known_1d_parameters_fast():
    theta, items, _, y = _simulate(3000, 150)
    start = time.perf_counter()
    theta_hat, fitted = fit_mirt(y, 1)
    assert time.perf_counter() - start < 20
    assert theta_hat.shape == (3000, 1) and fitted.a.shape == (150, 1)
    assert np.corrcoef(theta[:, 0], theta_hat[:, 0])[0, 1] > 0.9
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
    three, one = fit_reference_irt(y3), fit_reference_irt(y1)
    assert set(three["without_validation"]) == set(CANDIDATES)
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
    assert setup["shape"][0] == d3 and len(setup["shape_error"]) == len(CANDIDATES)
    assert ItemParams.from_json(setup["anchor_items"]).dims == d3
    json.dumps(setup)


def test_a_setup_refitted_without_some_models_does_not_see_their_outcomes():
    _, _, _, y = _simulate(600, 60, dims=2, seed=8)
    anchors = np.arange(0, 60, 3)
    fits = fit_reference_irt(y)
    setup = gp_irt_setup(y, anchors, fits=fits)
    rows = np.arange(500, 600)
    without = setup_without(setup, fits, rows)
    shape = (setup["shape"][0], setup["shape"][1])
    expected = fit_mirt(y[:500], *shape)[1]
    assert np.allclose(ItemParams.from_json(without["anchor_items"]).a, expected.take(anchors).a)
    assert without["lambda"] == setup["lambda"] and without["shape"] == setup["shape"]
    assert not np.allclose(without["anchor_items"]["b"], setup["anchor_items"]["b"])


def test_ability_from_anchors_tracks_true_ability():
    theta, _, _, y = _simulate(2000, 120, seed=1)
    _, items = fit_mirt(y[:1500], 1)
    anchors = np.arange(0, 120, 3)
    estimate = fit_ability(y[1500:, anchors], items.take(anchors))
    assert estimate.shape == (500, 1)
    assert np.corrcoef(theta[1500:, 0], estimate[:, 0])[0, 1] > 0.8


def test_the_expected_score_reads_a_d_dimensional_ability_on_the_score_scale():
    _, _, _, y = _simulate(1400, 60, dims=3, seed=7)
    _, items = fit_mirt(y[:1000], 3)
    few, many = np.arange(0, 60, 6), np.arange(0, 60, 2)

    def setup(anchors):
        others = np.setdiff1d(np.arange(60), anchors)
        return {"anchor_items": items.take(anchors).to_json(),
                "other_items": items.take(others).to_json()}

    score_few, sd_few = irt_expected_score(y[1000:, few], setup(few))
    score_many, sd_many = irt_expected_score(y[1000:, many], setup(many))
    truth = y[1000:].mean(axis=1)
    assert score_few.shape == sd_few.shape == (400,) and np.all((score_few > 0) & (score_few < 1))
    # one number per model that tracks its accuracy, closer with more anchors
    assert np.corrcoef(score_many, truth)[0, 1] > np.corrcoef(score_few, truth)[0, 1] > 0.7
    # more anchors, a narrower posterior; a score's SD never exceeds half its range
    assert np.all(sd_many < sd_few) and np.all((sd_few > 0) & (sd_few < 0.5))


def test_every_sample_an_anchor_leaves_no_other_items_and_still_predicts():
    _, _, _, y = _simulate(300, 30, dims=2, seed=9)
    setup = gp_irt_setup(y[:250], np.arange(30))
    assert setup["other_items"] == {"a": [], "b": []}
    targets = y[250:]
    # p-IRT is the observed mean; gp-IRT blends it with itself
    assert np.allclose(gp_irt_predict(targets, setup), targets.mean(axis=1))
    score, sd = irt_expected_score(targets, setup)
    assert score.shape == sd.shape == (50,) and np.all(sd > 0)
    assert np.corrcoef(score, targets.mean(axis=1))[0, 1] > 0.9


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


def test_gp_irt_predict_uses_the_setup_weight():
    _, _, _, y = _simulate(300, 200, dims=2, seed=2)
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
    _, _, _, y = _simulate(200, 40, dims=2, seed=3)
    _, items = fit_mirt(y, 2)
    anchors, others = np.arange(40), np.array([], dtype=int)
    # with every item an anchor, p-IRT is exactly the observed mean
    assert np.allclose(pirt_estimate(y[:, anchors], items.take(anchors), items.take(others)),
                       y.mean(axis=1))
