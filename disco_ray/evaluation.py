"""Evaluation protocol: held-out model splits, metrics, and methods side by side.

Every method is condensed on the reference models of a split only and scored on the held-out
models, so nothing of a held-out model reaches selection, PCA or the metamodel. Every held-out
prediction is kept (`held_out_predictions`); the metrics per seed, their means, and each
`disco*` method's paired gap to the best baseline are computed from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, norm, spearmanr
from tqdm.auto import tqdm

from disco_ray.condensed import Prediction
from disco_ray.metamodels.stack import strongest_rows
from disco_ray.methods import method_settings
from disco_ray.outputs import ModelOutputs
from disco_ray.search import MIN_REFERENCES, condense

SPLITS = ("random", "top", "chronological")
RANDOM_HOLDOUT = 0.2
TOP_HOLDOUT = 0.1
LEAVE_ONE_OUT_BELOW = 100
PREDICTION_COLUMNS = ("split", "k", "method", "seed", "model_id", "true", "score", "lower",
                      "upper", "out_of_population", "at_frontier")
CELL = ["split", "k", "method", "seed"]
GAP_COLUMNS = ["best_baseline", "gap_pp", "gap_se_pp"]
COVERAGE_CI_COLUMNS = ["coverage90_lo", "coverage90_hi"]


@dataclass(frozen=True)
class Split:
    """One partition of the models: references to condense on, held-out models to predict."""

    name: str
    seed: int
    references: np.ndarray
    held_out: np.ndarray


def model_splits(outputs: ModelOutputs, split: str, seeds: int,
                 leave_one_out_below: int = LEAVE_ONE_OUT_BELOW) -> Iterator[Split]:
    """The splits of `split` kind.

    `random`: 20% of models held out per seed (leave-one-model-out, each model once, when there
    are fewer than `leave_one_out_below` models; model i then draws its anchors with seed i mod
    `seeds`, so one lucky or unlucky anchor draw is not shared by every held-out model). `top`:
    the strongest 10% held out (at least 2), the same models for every seed. `chronological`:
    the newest 10%, by the `model_dates` in the outputs' meta.
    """
    m = outputs.n_models
    if split == "random":
        if m < leave_one_out_below:
            for i in range(m):
                yield Split(split, i % max(seeds, 1), np.delete(np.arange(m), i), np.array([i]))
            return
        for seed in range(seeds):
            order = np.random.default_rng(seed).permutation(m)
            n_out = int(round(RANDOM_HOLDOUT * m))
            yield Split(split, seed, np.sort(order[n_out:]), np.sort(order[:n_out]))
        return
    if split == "top":
        key = outputs.scores()
    elif split == "chronological":
        dates = outputs.meta.get("model_dates")
        if dates is None:
            raise ValueError(f"{outputs.source}: field 'model_dates' is missing, so there is no "
                             "chronological split. Fix: use --split random or top")
        key = np.asarray(dates).astype(str)
        if key.shape != (m,):
            raise ValueError(f"{outputs.source}: field 'model_dates' holds {key.size} dates for "
                             f"{m} models. Fix: give one date per model, in model order")
    else:
        raise ValueError(f"unknown split '{split}'. Fix: use one of {', '.join(SPLITS)}")
    references, held_out = strongest_rows(key, TOP_HOLDOUT)
    for seed in range(seeds):
        yield Split(split, seed, references, held_out)


def prediction_frame(predictions: Sequence[Prediction], true: np.ndarray) -> pd.DataFrame:
    """One row per prediction: model_id, score, lower, upper, out_of_population, at_frontier,
    true score."""
    return pd.DataFrame({"model_id": [p.model_id for p in predictions],
                         "true": np.asarray(true, dtype=np.float64),
                         "score": [p.score for p in predictions],
                         "lower": [p.lower for p in predictions],
                         "upper": [p.upper for p in predictions],
                         "out_of_population": [p.out_of_population for p in predictions],
                         "at_frontier": [p.at_frontier for p in predictions]})


def warning_labels(predictions: pd.DataFrame) -> pd.Series:
    """Per prediction: "out of population", "at frontier" or "none" (predictions kept before
    the frontier warning existed have no `at_frontier` column: "none" or out of population)."""
    frontier = predictions.get("at_frontier", pd.Series(False, index=predictions.index))
    return pd.Series(np.where(predictions["out_of_population"], "out of population",
                              np.where(frontier.fillna(False).astype(bool), "at frontier",
                                       "none")), index=predictions.index, name="warning")


def covered(predictions: pd.DataFrame) -> pd.Series:
    """Whether each prediction's 90% interval holds the true score."""
    return (predictions["true"] >= predictions["lower"]) & (
        predictions["true"] <= predictions["upper"])


def metrics(rows: pd.DataFrame) -> dict[str, float]:
    """MAE and worst error in percentage points, rank correlations, interval coverage/width, and
    the shares flagged out of population and at the frontier, of the predictions in `rows` (a
    `prediction_frame`)."""
    true, pred = rows["true"].to_numpy(), rows["score"].to_numpy()
    lower, upper = rows["lower"].to_numpy(), rows["upper"].to_numpy()
    error = np.abs(pred - true) * 100
    ranked = len(true) > 2 and np.ptp(true) > 0 and np.ptp(pred) > 0
    return {
        "mae_pp": float(error.mean()),
        "max_error_pp": float(error.max()),
        "spearman": float(spearmanr(true, pred).statistic) if ranked else float("nan"),
        "kendall": float(kendalltau(true, pred).statistic) if ranked else float("nan"),
        "coverage90": float(covered(rows).mean()),
        "width90_pp": float(np.mean(upper - lower) * 100),
        "ood_rate": float(rows["out_of_population"].mean()),
        "frontier_rate": float((warning_labels(rows) == "at frontier").mean()),
    }


@dataclass(frozen=True)
class Cell:
    """One condense-and-predict of the protocol: `method` at `k` anchors on one split. `seed`
    labels its rows (0 for every leave-one-model-out split, which are pooled into one seed)."""

    position: int
    split: Split
    k: int
    method: str
    seed: int


CellRunner = Callable[[ModelOutputs, Sequence[Cell]], Iterable[tuple[Cell, pd.DataFrame]]]


def evaluation_cells(outputs: ModelOutputs, methods: Sequence[str], ks: Sequence[int],
                     splits: Sequence[str], seeds: int,
                     leave_one_out_below: int = LEAVE_ONE_OUT_BELOW) -> list[Cell]:
    """Every cell of an evaluation, in the order its rows are reported."""
    cells: list[Cell] = []
    for name in splits:
        split_list = list(model_splits(outputs, name, seeds, leave_one_out_below))
        leave_one_out = all(len(s.held_out) == 1 for s in split_list)
        for k in ks:
            for method in methods:
                for split in split_list:
                    cells.append(Cell(len(cells), split, k, method,
                                      0 if leave_one_out else split.seed))
    return cells


def predict_cell(outputs: ModelOutputs, cell: Cell) -> pd.DataFrame:
    """Condense `cell`'s references and predict its held-out models: their prediction rows."""
    split = cell.split
    bench = condense(outputs.take_models(split.references),
                     method_settings(cell.method, cell.k, split.seed))
    held_out = outputs.take_models(split.held_out)
    return prediction_frame(bench.predict(held_out), held_out.scores()).assign(
        split=split.name, k=cell.k, method=cell.method, seed=cell.seed)


def run_cells_in_process(outputs: ModelOutputs,
                         cells: Sequence[Cell]) -> Iterator[tuple[Cell, pd.DataFrame]]:
    """The default `CellRunner`: one cell after another, here."""
    for cell in cells:
        yield cell, predict_cell(outputs, cell)


def held_out_predictions(outputs: ModelOutputs, methods: Sequence[str], ks: Sequence[int],
                         splits: Sequence[str], seeds: int = 5, progress: bool = True,
                         runner: CellRunner = run_cells_in_process,
                         leave_one_out_below: int = LEAVE_ONE_OUT_BELOW) -> pd.DataFrame:
    """Every held-out model's prediction: one row per (split, k, method, seed, model) with its
    true score, predicted score, 90% interval, out-of-population flag and frontier warning.

    Leave-one-model-out splits (`random` with fewer than `leave_one_out_below` models) are
    pooled into one set of predictions (seed 0). Every argument
    is checked before any method runs. `runner` runs the cells, in any order (the Ray layer's
    `run_cells_on_ray` runs them as tasks); the rows come back in `evaluation_cells` order.
    """
    check_plan(outputs, methods, ks, splits, seeds)
    cells = evaluation_cells(outputs, methods, ks, splits, seeds, leave_one_out_below)
    frames: dict[int, pd.DataFrame] = {}
    for cell, frame in tqdm(runner(outputs, cells), total=len(cells), desc="evaluate",
                            disable=not progress):
        frames[cell.position] = frame
    if len(frames) < len(cells):
        raise RuntimeError(f"the cell runner returned {len(frames)} of {len(cells)} cells")
    return pd.concat([frames[i] for i in range(len(cells))],
                     ignore_index=True)[list(PREDICTION_COLUMNS)]


def check_plan(outputs: ModelOutputs, methods: Sequence[str], ks: Sequence[int],
               splits: Sequence[str], seeds: int) -> None:
    """Refuse an evaluation that would fail part-way: unknown methods or splits, a split the
    outputs cannot make, k out of range, no seeds."""
    for name in splits:   # model_splits raises for an unknown or impossible split
        first = next(model_splits(outputs, name, 1), None)
        if first is not None and len(first.references) < MIN_REFERENCES:
            raise ValueError(f"{outputs.source}: split '{name}' leaves {len(first.references)} "
                             f"of its {outputs.n_models} models as references; condensing needs "
                             f"{MIN_REFERENCES}. Fix: evaluate on more models")
    if seeds < 1:
        raise ValueError(f"seeds={seeds}: at least one seed is needed. Fix: --seeds 1 or more")
    if not methods or not ks:
        raise ValueError("no method or no k to evaluate. Fix: give --methods and --anchors")
    for method in methods:
        method_settings(method, 1)   # raises on an unknown name, with the known ones
    bad = [k for k in ks if not 1 <= k <= outputs.n_samples]
    if bad:
        raise ValueError(f"{outputs.source}: k={bad[0]} anchors requested but it has "
                         f"{outputs.n_samples} samples. Fix: choose k values in 1.."
                         f"{outputs.n_samples}")


def per_seed_metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (split, k, method, seed) with the metrics of that seed's held-out models."""
    rows = [{**dict(zip(CELL, key)), "n_held_out": len(group), **metrics(group)}
            for key, group in predictions.groupby(CELL, sort=False, observed=True)]
    return pd.DataFrame(rows)


def gap_to_best_baseline(predictions: pd.DataFrame, method: str = "disco") -> pd.DataFrame:
    """Per (split, k): `method`'s MAE minus the lowest MAE among the baselines (methods not
    named `disco*`), with the standard error of that paired difference.

    The difference is paired on the unit that is replicated independently: the seed (its
    held-out models' mean error) when a cell has several, else the held-out model (leave-one-
    model-out). On the `top` split every seed holds out the same models, so its standard error
    counts the anchor draws and metamodel seeds, not the choice of models.
    """
    error = predictions.assign(error_pp=(predictions["score"] - predictions["true"]).abs() * 100)
    rows = []
    for (split, k), cell in error.groupby(["split", "k"], sort=False, observed=True):
        per_unit = cell.pivot_table(index=_pairing_unit(cell), columns="method",
                                    values="error_pp", aggfunc="mean", observed=True)
        baselines = [m for m in per_unit.columns if not m.startswith("disco")]
        if method not in per_unit.columns or not baselines:
            continue
        best = per_unit[baselines].mean().idxmin()
        difference = (per_unit[method] - per_unit[best]).dropna()
        gap, se = _mean_and_se(difference)
        rows.append({"split": split, "k": k, "method": method, "best_baseline": best,
                     "gap_pp": gap, "gap_se_pp": se, "gap_units": len(difference)})
    return pd.DataFrame(rows)


def paired_change(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per (split, k, method) that both prediction frames hold, matched on seed and model: the
    MAE of each, the change with the standard error of that paired difference (paired as in
    `gap_to_best_baseline`), the 90% coverage of each, and the largest change of one model's
    prediction (`max_shift_pp`)."""
    keys = ["split", "k", "method"]
    joined = before.merge(after, on=[*keys, "seed", "model_id"], suffixes=("_before", "_after"))
    rows = []
    for key, cell in joined.groupby(keys, sort=False, observed=True):
        sides = {side: cell[[f"{c}_{side}" for c in ("true", "score", "lower", "upper")]]
                 .set_axis(["true", "score", "lower", "upper"], axis=1)
                 for side in ("before", "after")}
        error = pd.DataFrame({side: (f["score"] - f["true"]).abs() * 100
                              for side, f in sides.items()})
        per_unit = error.groupby(cell[_pairing_unit(cell)].to_numpy()).mean()
        change, se = _mean_and_se(per_unit["after"] - per_unit["before"])
        rows.append({**dict(zip(keys, key)), "mae_before_pp": float(per_unit["before"].mean()),
                     "mae_after_pp": float(per_unit["after"].mean()), "change_pp": change,
                     "change_se_pp": se, "units": len(per_unit),
                     "coverage_before": float(covered(sides["before"]).mean()),
                     "coverage_after": float(covered(sides["after"]).mean()),
                     "max_shift_pp": float((cell["score_after"] - cell["score_before"])
                                           .abs().max() * 100)})
    return pd.DataFrame(rows)


def _pairing_unit(cell: pd.DataFrame) -> str:
    """What a cell replicates independently: the seed when it has several, else the held-out
    model (leave-one-model-out pools its splits into one seed)."""
    return "seed" if cell["seed"].nunique() > 1 else "model_id"


def _mean_and_se(difference: pd.Series) -> tuple[float, float]:
    """The mean of paired differences and its standard error (NaN for a single pair)."""
    n = len(difference)
    se = difference.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
    return float(difference.mean()), float(se)


def coverage_interval(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per (split, k, method): a 90% Wilson confidence interval for the coverage of the 90%
    intervals (`COVERAGE_CI_COLUMNS`), which tells a miscalibrated interval from a coverage that
    is off by chance.

    Each distinct held-out model counts once, with the share of its predictions that cover its
    score: seeds that predict a model again (every seed of `top`) add anchor draws, not models.
    So with 29 models, all 29 covered is consistent with a coverage of 0.915 or more. Models
    are taken as independent; on `top` they share anchors, so the interval is if anything
    narrower than it should be.
    """
    rows = []
    for key, cell in predictions.assign(covered=covered(predictions)).groupby(
            ["split", "k", "method"], sort=False, observed=True):
        per_model = cell.groupby("model_id", observed=True)["covered"].mean()
        low, high = _wilson(per_model.mean(), len(per_model))
        rows.append({**dict(zip(["split", "k", "method"], key)),
                     COVERAGE_CI_COLUMNS[0]: low, COVERAGE_CI_COLUMNS[1]: high})
    return pd.DataFrame(rows)


def _wilson(share: float, n: int, level: float = 0.9) -> tuple[float, float]:
    """The Wilson score interval for a proportion `share` observed on `n` units."""
    z = norm.ppf(0.5 + level / 2)
    center = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return float(max(center - half, 0.0)), float(min(center + half, 1.0))


def evaluation_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """The table `disco-ray evaluate` prints: the metrics of `predictions` averaged over seeds
    (`summarize`), each `disco*` row's gap to the best baseline (`with_gaps`) and each row's
    coverage interval (`coverage_interval`)."""
    summary = with_gaps(summarize(per_seed_metrics(predictions)), predictions)
    return summary.merge(coverage_interval(predictions), on=["split", "k", "method"], how="left")


def coverage_by_flag(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per (split, k, method) and `warning` (`warning_labels`): how many predictions, their share of
    the cell, MAE, 90% coverage and mean width (`metrics` of each group). A cell's coverage pools
    the groups, so it can land in its band while flagged targets are over-covered and the others
    under-covered."""
    keys = ["split", "k", "method", "warning"]
    table = pd.DataFrame([{**dict(zip(keys, key)), "n": len(group), **metrics(group)}
                          for key, group in predictions.assign(warning=warning_labels(predictions))
                          .groupby(keys, observed=True)])
    cell = table.groupby(keys[:-1], observed=True)["n"].transform("sum")
    return table.assign(share=table["n"] / cell)[
        [*keys, "n", "share", "mae_pp", "coverage90", "width90_pp"]]


def summarize(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean metrics over seeds per (split, k, method), with the MAE's standard deviation."""
    keys = ["split", "k", "method"]
    metric_columns = [c for c in per_seed.columns if c not in keys + ["seed"]]
    grouped = per_seed.groupby(keys, sort=False)
    table = grouped[metric_columns].mean()
    table["n_held_out"] = grouped["n_held_out"].max()   # the same in every seed of a cell
    table["mae_pp_std"] = grouped["mae_pp"].std(ddof=0)
    table["seeds"] = grouped["seed"].nunique()
    return table.reset_index()


def with_gaps(summary: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """`summary` (of `summarize`) with each `disco*` row's `gap_to_best_baseline` computed on
    `predictions` (`GAP_COLUMNS`; empty for other methods, and for every method when the
    predictions lack a method of the summary: its best baseline would be unknown). Earlier gap
    columns are replaced."""
    summary = summary.drop(columns=GAP_COLUMNS, errors="ignore")
    variants = [m for m in summary["method"].unique() if m.startswith("disco")]
    complete = set(summary["method"]) <= set(predictions["method"])
    gaps = [gap_to_best_baseline(predictions, v) for v in variants] if complete else []
    gaps = [g for g in gaps if len(g)]
    if not gaps:
        return summary.assign(**{c: np.nan for c in GAP_COLUMNS})
    gaps = pd.concat(gaps, ignore_index=True)[["split", "k", "method", *GAP_COLUMNS]]
    return summary.merge(gaps, on=["split", "k", "method"], how="left")
