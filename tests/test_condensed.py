"""Condensing: no leakage of held-out models, save/load predicts identically, clear errors."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from disco_ray.condensed import data_hash
from disco_ray.design import AnchorDesign, CondenseSettings
from disco_ray.io.benchmark import read_benchmark, write_benchmark
from disco_ray.metamodels import describe_metamodel
from disco_ray.methods import method_settings
from disco_ray.outputs import OutputsError
from disco_ray.search import condense
from disco_ray.signatures import anchor_features
from helpers import synthetic_population

SETTINGS = CondenseSettings(k=12, designs=(AnchorDesign("top", "jsd"),),
                            metamodels=({"regressor": "rf", "pca": 8},
                                        {"regressor": "knn", "pca": 8}))


@pytest.fixture(scope="module")
def population():
    return synthetic_population(80, 60, seed=1)


def test_saved_and_reloaded_benchmark_predicts_identically(tmp_path, population):
    refs, targets = population.take_models(range(60)), population.take_models(range(60, 80))
    bench = condense(refs, SETTINGS)
    loaded = read_benchmark(write_benchmark(bench, tmp_path / "bench"))
    assert loaded.anchor_ids == bench.anchor_ids and loaded.choice == bench.choice
    assert loaded.data_hash == bench.data_hash
    assert bench.predict(targets) == loaded.predict(targets)
    files = sorted(p.name for p in (tmp_path / "bench").iterdir())
    assert files == ["condensed.json", "context.npz", "disagreement.npz", "references.parquet"]


def test_a_benchmark_is_written_and_read_through_a_string_path(tmp_path, population, monkeypatch):
    """As the README's Python example does: `write_benchmark(..., "bench/")`."""
    monkeypatch.chdir(tmp_path)
    bench = condense(population.take_models(range(60)), SETTINGS)
    assert write_benchmark(bench, "bench/") == Path("bench")
    assert read_benchmark("bench/").anchor_ids == bench.anchor_ids


def test_a_saved_disco_benchmark_keeps_fitted_data_out_of_its_manifest(tmp_path, population):
    """The manifest holds settings and choices; the IRT item parameters and anchor weights the
    metamodel fits on are arrays in context.npz, and the reloaded stack predicts the same."""
    refs, targets = population.take_models(range(40)), population.take_models(range(60, 70))
    bench = condense(refs, method_settings("disco", 10, seed=1))
    path = write_benchmark(bench, tmp_path / "bench")
    manifest = (path / "condensed.json").read_text()
    assert '"irt"' not in manifest and '"weights"' not in manifest and '"gold"' not in manifest
    assert bench.choice["metamodel"] == method_settings("disco", 10).metamodels[0]
    with np.load(path / "context.npz", allow_pickle=False) as saved:
        assert {"irt_anchor_a", "irt_lambda", "mean_is_unbiased"} <= set(saved.files)
    assert read_benchmark(path).predict(targets) == bench.predict(targets)


@pytest.mark.parametrize("method, name, shape, dims", [("disco", "irt", [1, None], 1),
                                                       ("gp_irt", "mirt", [3, 0.5], 3)])
def test_an_irt_setup_is_saved_and_reloaded(tmp_path, population, monkeypatch, method, name,
                                            shape, dims):
    """`disco` keeps the classic 1-D setup, `gp_irt` the multidimensional one ([k, D]
    discriminations, its chosen shape); the reloaded benchmark predicts the same."""
    import disco_ray.irt

    monkeypatch.setattr(disco_ray.irt, "MULTIDIM", ((3, 0.5),))
    refs, targets = population.take_models(range(40)), population.take_models(range(60, 70))
    bench = condense(refs, method_settings(method, 10, seed=1))
    path = write_benchmark(bench, tmp_path / "bench")
    with np.load(path / "context.npz", allow_pickle=False) as saved:
        assert saved[f"{name}_anchor_a"].shape == (10, dims)
    reloaded = read_benchmark(path)
    assert getattr(reloaded.context, name)["shape"] == shape
    assert reloaded.predict(targets) == bench.predict(targets)


def test_the_benchmark_prediction_is_its_estimators_prediction(population):
    """`CondensedBenchmark.predict` adds only the population check: the scores and intervals
    are the fitted estimator's `predict` and `predict_interval` (routing included)."""
    refs, targets = population.take_models(range(40)), population.take_models(range(40, 80))
    for method in ("disco", "jsd_rf"):
        bench = condense(refs, method_settings(method, 10, seed=1))
        X = anchor_features(targets, targets.sample_index(bench.anchor_ids))
        predictions = bench.predict(targets)
        flagged = np.array([p.out_of_population for p in predictions])
        lower, upper = bench.metamodel.predict_interval(X, flagged)
        assert [p.score for p in predictions] == bench.metamodel.predict(X).tolist()
        assert [(p.lower, p.upper) for p in predictions] == list(zip(lower, upper))


def test_describe_names_the_choice_without_fitted_parameters(population):
    bench = condense(population.take_models(range(60)), SETTINGS)
    chosen = bench.choice["metamodel"]["regressor"]
    assert bench.describe() == (f"12 anchors (top-jsd), metamodel {chosen}, reference CV MAE "
                                f"{100 * bench.choice['cv_mae']:.2f} pp")
    stack = {"regressor": "stack", "members": [
        {"regressor": "direct", "weights": [0.5, 0.5]},
        {"regressor": "gp_irt", "irt": {"a": [1.0]}}, {"regressor": "gp_irt", "feature": "theta"},
        {"regressor": "ridge", "pca": 256}]}
    assert describe_metamodel(stack) == "stack of direct, gp_irt, ridge"


def test_held_out_models_never_reach_selection_or_metamodel(population):
    refs = population.take_models(range(60))
    bench = condense(refs, SETTINGS)
    # Replace the held-out models' outputs by noise: the benchmark condensed on references
    # is unchanged, and a held-out model's prediction depends only on its own outputs.
    noisy = synthetic_population(80, 60, seed=99)
    bench_again = condense(refs, SETTINGS)
    assert bench_again.anchor_ids == bench.anchor_ids
    assert bench_again.predict(noisy.take_models([70])) == bench.predict(noisy.take_models([70]))
    first = bench.predict(population.take_models([70, 71]))
    assert first[0] == bench.predict(population.take_models([70]))[0]


def test_predictions_carry_intervals(population):
    bench = condense(population.take_models(range(60)), SETTINGS)
    for p in bench.predict(population.take_models(range(60, 80))):
        assert p.lower < p.score < p.upper


def test_a_model_missing_anchor_samples_is_a_clear_error(population):
    bench = condense(population.take_models(range(60)), SETTINGS)
    target = population.take_models([70])
    keep = [i for i, sid in enumerate(target.sample_ids) if sid != bench.anchor_ids[0]]
    with pytest.raises(OutputsError, match=f"missing, e.g. \\['{bench.anchor_ids[0]}'\\]"):
        bench.predict(target.take_samples(keep))


def test_a_target_with_fewer_answer_choices_gets_zero_probability_ones(population):
    """A file of the anchors only may not reach the benchmark's largest choice count (e.g. no
    5-option question among them): its probabilities are padded, as the references' are."""
    refs = population.take_models(range(60))
    bench = condense(refs.with_choices(5), SETTINGS)   # as if some question had a 5th option
    target = population.take_models(range(60, 64))
    assert bench.predict(target) == bench.predict(target.with_choices(5))
    with pytest.raises(OutputsError, match="'probs' has 6 choices, the references 5. Fix: "
                                           "score the same answer options"):
        bench.predict(target.with_choices(6))


def test_small_populations(population):
    """disco's nested CV works with folds of 1-2 models: 2 references are refused with a fix,
    3 and 4 condense."""
    with pytest.raises(ValueError, match="2 reference model\\(s\\); condensing needs at least "
                                         "3.*Fix: add reference models"):
        condense(population.take_models([0, 1]), method_settings("disco", 5))
    for n in (3, 4):
        bench = condense(population.take_models(range(n)), method_settings("disco", 5))
        [p] = bench.predict(population.take_models([70]))
        assert 0 <= p.lower <= p.score <= p.upper <= 1
    # 4 references: top-jsd draws on all of them but not on one fold's 3 (seed 2): that
    # candidate scores infinite in the nested CV instead of stopping the condense
    outcomes = synthetic_population(4, 30, seed=2, with_probs=False)
    bench = condense(outcomes, method_settings("disco", 5))
    assert bench.design != AnchorDesign("top", "jsd") and np.isfinite(bench.choice["cv_mae"])


def test_the_stack_cross_validates_with_the_settings_folds(population):
    settings = replace(method_settings("disco", 10), cv_folds=3,
                       designs=(AnchorDesign("random"),))
    assert condense(population.take_models(range(40)), settings).metamodel.folds == 3


def test_a_score_is_a_fraction_even_when_the_metamodel_overshoots(population, monkeypatch):
    bench = condense(population.take_models(range(60)), SETTINGS)
    monkeypatch.setattr(bench.metamodel.estimator_, "predict",
                        lambda X: np.array([-0.02, 1.03]))
    low, high = bench.predict(population.take_models([70, 71]))
    assert (low.score, high.score) == (0.0, 1.0)
    assert low.lower == 0.0 <= low.upper and high.lower <= 1.0 == high.upper


def test_the_data_hash_covers_gold_and_groups(population):
    """The pipeline reuses a saved benchmark while the hash matches: every input counts."""
    refs = population.take_models(range(10))
    changed = [replace(refs, gold=(refs.gold + 1) % 4),
               replace(refs, groups=np.full(refs.n_samples, "one"))]
    assert len({data_hash(o) for o in [refs, *changed]}) == 3


def test_probabilities_without_gold_are_refused_where_gold_is_needed(population):
    """IRT reads right and wrong from the probabilities through `gold`; a signature regressor
    does not need it."""
    refs = replace(population.take_models(range(60)), gold=None)
    with pytest.raises(OutputsError, match="field 'gold' is missing; with per-choice "
                                           "probabilities the IRT.*Fix: add gold"):
        condense(refs, method_settings("gp_irt", 12))
    assert len(condense(refs, SETTINGS).anchor_ids) == 12


def test_k_larger_than_n(population):
    with pytest.raises(ValueError, match="k=61 anchors requested.*Fix: choose k <= 60"):
        condense(population, method_settings("pds_rf", 61))


def test_an_unknown_metamodel_is_named_with_the_known_ones(population):
    settings = CondenseSettings(k=5, designs=(AnchorDesign("random"),),
                                metamodels=({"regressor": "lgbm"},))
    with pytest.raises(ValueError, match="unknown metamodel 'lgbm'.*one of direct, gp_irt, "
                                         "hybrid, rf, knn, ridge, stack"):
        condense(population.take_models(range(60)), settings)


def test_incompatible_version_is_refused(tmp_path, population):
    path = write_benchmark(condense(population.take_models(range(60)), SETTINGS),
                           tmp_path / "b")
    manifest = json.loads((path / "condensed.json").read_text())
    manifest["format_version"] = 999
    (path / "condensed.json").write_text(json.dumps(manifest))
    with pytest.raises(OutputsError, match="'format_version' is 999.*condense the benchmark again"):
        read_benchmark(path)


def test_save_leaves_no_partial_directory_on_failure(tmp_path, population, monkeypatch):
    bench = condense(population.take_models(range(60)), SETTINGS)
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_benchmark(bench, tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("edit, message", [
    (lambda m: "{cut", r"condensed.json: invalid JSON"),
    (lambda m: json.dumps({k: v for k, v in m.items() if k != "settings"}),
     r"condensed.json: field 'settings' is missing, not what this disco-ray"),
    (lambda m: json.dumps({**m, "settings": {**m["settings"], "new_option": 1}}),
     r"condensed.json: settings: .*unexpected keyword argument 'new_option', not what"),
])
def test_an_edited_manifest_gets_a_clear_error(tmp_path, population, edit, message):
    path = write_benchmark(condense(population.take_models(range(60)), SETTINGS),
                           tmp_path / "b")
    manifest = json.loads((path / "condensed.json").read_text())
    (path / "condensed.json").write_text(edit(manifest))
    with pytest.raises(OutputsError, match=message + ".*Fix: condense the benchmark again"):
        read_benchmark(path)


def test_anchor_designs_have_one_name_each_way():
    for name in ("random", "cluster-centroid", "cluster-random", "top-pds", "top-jsd@20",
                 "stratified-jsd", "stratified-pds@5"):
        assert AnchorDesign.parse(name).name == name
    assert AnchorDesign.parse("cluster") == AnchorDesign("cluster", "centroid")
    assert AnchorDesign.parse("top-jsd@20") == AnchorDesign("top", "jsd", 20)
    for bad, message in (("top", "unknown anchor design top-None"),
                         ("random@3", "guiding=3"), ("top-jsd@x", "'@x' is not a number")):
        with pytest.raises(ValueError, match=message):
            AnchorDesign.parse(bad)


def test_guiding_subsets_and_stratified_selection_draw_the_anchors(population):
    """`top-jsd@N` ranks samples by the disagreement of N references drawn by the seed;
    `stratified-jsd` takes the top of every group in proportion to its size."""
    from disco_ray.disagreement import disagreement_scores
    from disco_ray.selection import select_anchors

    refs = population.take_models(range(40))
    guided = condense(refs, method_settings("jsd_rf", 12, 3, [AnchorDesign.parse("top-jsd@10")]))
    expected = select_anchors(refs.n_samples, 12, "top",
                              disagreement_scores(refs.distributions(), "jsd", 10, 3))
    assert guided.anchor_ids == refs.sample_ids[expected].tolist()
    assert guided.anchor_ids != condense(refs, method_settings("jsd_rf", 12, 3)).anchor_ids
    stratified = condense(refs, method_settings("jsd_rf", 12, 3,
                                                [AnchorDesign("stratified", "jsd")]))
    groups = refs.groups[refs.sample_index(stratified.anchor_ids)]
    assert sorted(np.unique(groups, return_counts=True)[1]) == [3, 3, 3, 3]
    assert stratified.design.name == "stratified-jsd"
