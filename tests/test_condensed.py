"""Condensing: no leakage of held-out models, save/load predicts identically, clear errors."""

import json

import numpy as np
import pytest

from disco_ray.condensed import CondensedBenchmark, CondenseSettings, condense
from disco_ray.metamodels import describe_metamodel
from disco_ray.methods import method_settings
from disco_ray.outputs import OutputsError
from helpers import synthetic_population

SETTINGS = CondenseSettings(k=12, score="jsd", metamodels=({"regressor": "rf", "pca": 8},
                                                           {"regressor": "knn", "pca": 8}))


@pytest.fixture(scope="module")
def population():
    return synthetic_population(80, 60, seed=1)


def test_saved_and_reloaded_benchmark_predicts_identically(tmp_path, population):
    refs, targets = population.take_models(range(60)), population.take_models(range(60, 80))
    bench = condense(refs, SETTINGS)
    loaded = CondensedBenchmark.load(bench.save(tmp_path / "bench"))
    assert loaded.anchor_ids == bench.anchor_ids and loaded.choice == bench.choice
    assert loaded.data_hash == bench.data_hash
    assert bench.predict(targets) == loaded.predict(targets)
    files = sorted(p.name for p in (tmp_path / "bench").iterdir())
    assert files == ["condensed.json", "disagreement.npz", "references.parquet"]


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


def test_k_larger_than_n(population):
    with pytest.raises(ValueError, match="k=61 anchors requested.*Fix: choose k <= 60"):
        condense(population, method_settings("pds_rf", 61))


def test_an_unknown_metamodel_is_named_with_the_known_ones(population):
    settings = CondenseSettings(k=5, selection="random", metamodels=({"regressor": "lgbm"},))
    with pytest.raises(ValueError, match="unknown metamodel 'lgbm'.*one of direct, gp_irt, "
                                         "hybrid, stack, rf, knn, ridge"):
        condense(population.take_models(range(60)), settings)


def test_incompatible_version_is_refused(tmp_path, population):
    path = condense(population.take_models(range(60)), SETTINGS).save(tmp_path / "b")
    manifest = json.loads((path / "condensed.json").read_text())
    manifest["format_version"] = 999
    (path / "condensed.json").write_text(json.dumps(manifest))
    with pytest.raises(OutputsError, match="'format_version' is 999.*condense the benchmark again"):
        CondensedBenchmark.load(path)


def test_save_leaves_no_partial_directory_on_failure(tmp_path, population, monkeypatch):
    bench = condense(population.take_models(range(60)), SETTINGS)
    monkeypatch.setattr(np, "savez", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        bench.save(tmp_path / "b")
    assert list(tmp_path.iterdir()) == []
