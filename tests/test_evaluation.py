"""The evaluation protocol: splits, per-model predictions, and paired gaps to the baselines."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from disco_ray.evaluation import (check_plan, coverage_by_flag, coverage_interval, evaluation_cells,
                                  evaluation_table, gap_to_best_baseline, held_out_predictions,
                                  model_splits, paired_change, per_seed_metrics, predict_cell,
                                  summarize, with_gaps)
from helpers import synthetic_population


def test_leave_one_out_draws_anchors_with_several_seeds():
    """With fewer than 100 models each model is held out once, and the anchor seeds rotate."""
    splits = list(model_splits(synthetic_population(12, 20, seed=0), "random", seeds=5))
    assert [s.held_out.tolist() for s in splits] == [[i] for i in range(12)]
    assert [s.seed for s in splits] == [i % 5 for i in range(12)]
    assert all(i not in s.references for i, s in enumerate(splits))


def _frame(rows):
    """A `held_out_predictions` frame from (split, k, method, seed, model, true, score) rows."""
    frame = pd.DataFrame(rows, columns=["split", "k", "method", "seed", "model_id", "true",
                                        "score"])
    return frame.assign(lower=frame["score"] - 0.05, upper=frame["score"] + 0.05,
                        out_of_population=False)


def test_gap_is_paired_on_seeds_when_there_are_several():
    """Per seed: disco errs 2 and 4 pp, baseline a 3 and 3, b 10 and 10 -> best a, gap 0 +- 1."""
    rows = []
    for seed, (disco, a) in enumerate([(0.02, 0.03), (0.04, 0.03)]):
        for model in ("m1", "m2"):
            rows += [("random", 10, "disco", seed, model, 0.5, 0.5 + disco),
                     ("random", 10, "a", seed, model, 0.5, 0.5 - a),
                     ("random", 10, "b", seed, model, 0.5, 0.6)]
    gap = gap_to_best_baseline(_frame(rows)).iloc[0]
    assert gap["best_baseline"] == "a" and gap["gap_units"] == 2
    assert gap["gap_pp"] == pytest.approx(0.0, abs=1e-9)
    assert gap["gap_se_pp"] == pytest.approx(1.0)   # differences -1, +1: sd sqrt(2) / sqrt(2)


def test_gap_is_paired_on_models_when_left_one_out():
    """One pooled seed: the unit is the held-out model (3 differences 1, 2, 3 pp)."""
    rows = []
    for i, extra in enumerate((0.01, 0.02, 0.03)):
        rows += [("random", 10, "disco", 0, f"m{i}", 0.4, 0.4 + 0.02 + extra),
                 ("random", 10, "gp_irt", 0, f"m{i}", 0.4, 0.38)]
    gap = gap_to_best_baseline(_frame(rows)).iloc[0]
    assert gap["best_baseline"] == "gp_irt" and gap["gap_units"] == 3
    assert gap["gap_pp"] == pytest.approx(2.0)
    assert gap["gap_se_pp"] == pytest.approx(1.0 / np.sqrt(3))


def test_a_rerun_is_compared_with_the_kept_predictions_paired_per_seed():
    """Kept errs 2 pp on both seeds; the rerun moves seed 1's models by +1 pp and +3 pp (errors
    3 and 5, seed mean 4): change +1 +- 1 pp, largest shift 3 pp. A model only one frame holds
    is left out, and an unchanged cell shows no change."""
    kept, rerun = [], []
    for seed in (0, 1):
        for model, shift in (("m1", 0.01), ("m2", 0.03)):
            kept += [("top", 10, "disco", seed, model, 0.5, 0.52),
                     ("top", 25, "disco", seed, model, 0.5, 0.48)]
            rerun += [("top", 10, "disco", seed, model, 0.5, 0.52 + shift * seed),
                      ("top", 25, "disco", seed, model, 0.5, 0.48)]
    rerun.append(("top", 10, "disco", 0, "only_rerun", 0.5, 0.9))
    table = paired_change(_frame(kept), _frame(rerun)).set_index("k")
    moved, same = table.loc[10], table.loc[25]
    assert moved["mae_before_pp"] == pytest.approx(2.0)
    assert moved["mae_after_pp"] == pytest.approx(3.0)
    assert moved["change_pp"] == pytest.approx(1.0)
    assert moved["change_se_pp"] == pytest.approx(1.0)   # seed changes 0 and 2: sd sqrt(2)/sqrt(2)
    assert moved["units"] == 2 and moved["max_shift_pp"] == pytest.approx(3.0)
    assert moved["coverage_before"] == 1.0 and moved["coverage_after"] == 1.0
    assert same["change_pp"] == 0.0 and same["max_shift_pp"] == 0.0


def test_per_seed_metrics_come_from_every_held_out_prediction():
    """`evaluate` = metrics of `held_out_predictions`; each model appears once per cell, and the
    summary's gap of `disco` to its best baseline is the paired difference of their MAEs."""
    outputs = synthetic_population(100, 40, with_probs=False)
    predictions = held_out_predictions(outputs, ["random_direct", "random_rf", "disco"], [10],
                                       ["random"], seeds=2, progress=False)
    assert len(predictions) == 3 * 2 * 20
    assert not predictions.duplicated(["method", "seed", "model_id"]).any()
    truth = dict(zip(outputs.model_ids, outputs.scores()))
    assert np.allclose(predictions["true"], predictions["model_id"].map(truth))
    per_seed = per_seed_metrics(predictions)
    by_hand = (predictions["score"] - predictions["true"]).abs().groupby(
        [predictions["method"], predictions["seed"]], sort=False).mean() * 100
    assert np.allclose(per_seed.set_index(["method", "seed"])["mae_pp"], by_hand)
    summary = with_gaps(summarize(per_seed), predictions).set_index("method")
    best = summary.loc[["random_direct", "random_rf"], "mae_pp"].idxmin()
    assert summary.loc["disco", "best_baseline"] == best
    assert summary.loc["disco", "gap_pp"] == pytest.approx(
        summary.loc["disco", "mae_pp"] - summary.loc[best, "mae_pp"])
    assert summary.loc[["random_direct", "random_rf"], "gap_pp"].isna().all()


def test_a_runner_may_finish_cells_in_any_order():
    """A runner that returns the cells last-first (as Ray tasks finish) gives the same rows in
    the same order as the default; under leave-one-model-out every cell is labelled seed 0."""
    outputs = synthetic_population(12, 20, with_probs=False)
    plan = (outputs, ["random_direct", "random_rf"], [5], ["random", "top"], 2)
    cells = evaluation_cells(*plan)
    assert len(cells) == 2 * 12 + 2 * 2   # leave-one-out: 12 splits; top: 2 seeds
    assert [c.position for c in cells] == list(range(len(cells)))
    assert {c.seed for c in cells if c.split.name == "random"} == {0}
    assert {c.split.seed for c in cells if c.split.name == "random"} == {0, 1}

    def last_first(outs, todo):
        return ((cell, predict_cell(outs, cell)) for cell in reversed(todo))

    pd.testing.assert_frame_equal(held_out_predictions(*plan, progress=False, runner=last_first),
                                  held_out_predictions(*plan, progress=False))


def test_predictions_read_back_from_parquet_give_the_same_table(tmp_path):
    """Saved with categorical labels (as dev_table.py keeps them), read back and filtered, the
    predictions give the same metrics and gaps: no empty groups for the categories filtered out."""
    outputs = synthetic_population(30, 30, with_probs=False)
    predictions = held_out_predictions(outputs, ["random_direct", "random_rf"], [5, 10],
                                       ["random"], seeds=2, progress=False)
    predictions = predictions.assign(method=predictions["method"].replace("random_rf", "disco"))
    path = tmp_path / "held_out.parquet"
    predictions.astype({"split": "category", "method": "category",
                        "model_id": "category"}).to_parquet(path)
    read_back = pd.read_parquet(path)
    table = with_gaps(summarize(per_seed_metrics(predictions)), predictions)
    again = with_gaps(summarize(per_seed_metrics(read_back)), read_back)
    assert len(again) == len(table) == 4   # k x method; 30 models: leave-one-out, one seed
    pd.testing.assert_frame_equal(again.astype({"split": object, "method": object}), table,
                                  check_dtype=False)
    only_disco = per_seed_metrics(read_back[read_back["method"] == "disco"])
    assert len(only_disco) == 2 and set(only_disco["method"]) == {"disco"}   # k = 5, 10


def test_coverage_by_flag_separates_what_the_pooled_coverage_hides():
    """Two flagged targets covered by wide intervals, one at the frontier and one without a
    warning, both missed: the cell's pooled coverage is 0.5, the groups' 1, 0 and 0, with their
    own widths, shares and MAEs. Predictions kept before the frontier warning (no `at_frontier`
    column) fall in two groups."""
    predictions = pd.DataFrame({
        "split": "top", "k": 10, "method": "disco", "seed": 0,
        "model_id": ["a", "b", "c", "d"],
        "true": [0.80, 0.82, 0.75, 0.76],
        "score": [0.78, 0.85, 0.70, 0.70],
        "lower": [0.60, 0.65, 0.68, 0.68],
        "upper": [0.96, 1.00, 0.72, 0.72],
        "out_of_population": [True, True, False, False],
        "at_frontier": [False, False, True, False]})
    table = coverage_by_flag(predictions).set_index("warning")
    cell = per_seed_metrics(predictions)
    assert cell["coverage90"].item() == 0.5
    assert cell["ood_rate"].item() == 0.5 and cell["frontier_rate"].item() == 0.25
    assert table["coverage90"].to_dict() == {"at frontier": 0.0, "none": 0.0,
                                             "out of population": 1.0}
    assert table["n"].to_dict() == {"at frontier": 1, "none": 1, "out of population": 2}
    assert table.loc["out of population", "share"] == 0.5
    assert table.loc["at frontier", "share"] == table.loc["none", "share"] == 0.25
    assert table.loc["out of population", "width90_pp"] == pytest.approx(35.5)
    assert table.loc["at frontier", "width90_pp"] == pytest.approx(4.0)
    assert table.loc["out of population", "mae_pp"] == pytest.approx(2.5)
    assert table.loc["at frontier", "mae_pp"] == pytest.approx(5.0)
    assert table.loc["none", "mae_pp"] == pytest.approx(6.0)
    older = coverage_by_flag(predictions.drop(columns="at_frontier")).set_index("warning")
    assert older["n"].to_dict() == {"none": 2, "out of population": 2}
    assert older.loc["none", "mae_pp"] == pytest.approx(5.5)


@pytest.mark.parametrize("methods, ks, seeds, message", [
    (["random_direct", "disko"], [5], 2, "unknown method 'disko'"),
    (["random_direct"], [5, 21], 2, "k=21 anchors requested but .* has 20 samples"),
    (["random_direct"], [5], 0, "seeds=0: at least one seed is needed"),
])
def test_a_plan_that_would_fail_part_way_is_refused_up_front(monkeypatch, methods, ks, seeds,
                                                             message):
    import disco_ray.evaluation

    monkeypatch.setattr(disco_ray.evaluation, "condense", lambda *a, **k: pytest.fail("ran"))
    outputs = synthetic_population(30, 20, with_probs=False)
    with pytest.raises(ValueError, match=message):
        held_out_predictions(outputs, methods, ks, ["random"], seeds, progress=False)


def test_coverage_interval_counts_each_held_out_model_once():
    """29 models held out once each, all covered: consistent with any coverage from 0.915 up
    (Wilson, 90%). The same 29 predicted in 5 seeds (as `top` does) are still 29 models; 26 of
    29 covered in every seed gives the interval of 26 of 29, not of 130 of 145."""
    def cell(seeds, missed):
        return pd.DataFrame([
            {"split": "top", "k": 10, "method": "disco", "seed": seed, "model_id": f"m{i}",
             "true": 0.5, "score": 0.5, "lower": 0.6 if i < missed else 0.4, "upper": 0.7,
             "out_of_population": False, "at_frontier": False}
            for seed in range(seeds) for i in range(29)])
    [once] = coverage_interval(cell(1, 0)).to_dict(orient="records")
    assert once["coverage90_lo"] == pytest.approx(0.9147, abs=1e-4)
    assert once["coverage90_hi"] == 1.0
    [repeated] = coverage_interval(cell(5, 3)).to_dict(orient="records")
    assert (repeated["coverage90_lo"], repeated["coverage90_hi"]) == pytest.approx(
        (0.7675, 0.9579), abs=1e-4)
    # a model covered in 3 of its 5 seeds counts as 0.6 of a model, not rounded to 1
    partly = cell(5, 0).query("model_id in ['m0', 'm1', 'm2']").copy()
    partly.loc[(partly["model_id"] == "m0") & (partly["seed"] < 2), "lower"] = 0.6
    [fraction] = coverage_interval(partly).to_dict(orient="records")
    assert (fraction["coverage90_lo"], fraction["coverage90_hi"]) == pytest.approx(
        (0.4012, 0.9844), abs=1e-4)
    table = evaluation_table(cell(5, 3))
    assert table["coverage90"].item() == pytest.approx(26 / 29)
    assert table["coverage90_lo"].item() == pytest.approx(0.7675, abs=1e-4)


@pytest.mark.parametrize("n_models, split, left", [(4, "top", 2), (3, "random", 2)])
def test_a_plan_that_leaves_too_few_references_is_refused_up_front(n_models, split, left):
    outputs = synthetic_population(n_models, 20)
    with pytest.raises(ValueError, match=f"split '{split}' leaves {left} of its {n_models} models "
                                         "as references; condensing needs 3"):
        check_plan(outputs, ["disco"], [5], [split], 1)


def test_too_few_model_dates_are_refused():
    outputs = synthetic_population(30, 20)
    outputs = replace(outputs, meta={"model_dates": ["2024-01-01"] * 5})
    with pytest.raises(ValueError, match="'model_dates' holds 5 dates for 30 models"):
        check_plan(outputs, ["disco"], [5], ["chronological"], 1)
