"""Evaluation protocol: held-out model splits, metrics, and methods side by side.

Every method is condensed on the reference models of a split only and scored on the held-out
models, so nothing of a held-out model reaches selection, PCA or the metamodel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr
from tqdm.auto import tqdm

from disco_ray.condensed import Prediction, condense
from disco_ray.methods import method_settings
from disco_ray.outputs import ModelOutputs

SPLITS = ("random", "top", "chronological")
RANDOM_HOLDOUT = 0.2
TOP_HOLDOUT = 0.1
LEAVE_ONE_OUT_BELOW = 100


@dataclass(frozen=True)
class Split:
    """One partition of the models: references to condense on, held-out models to predict."""

    name: str
    seed: int
    references: np.ndarray
    held_out: np.ndarray


def model_splits(outputs: ModelOutputs, split: str, seeds: int) -> Iterator[Split]:
    """The splits of `split` kind.

    `random`: 20% of models held out per seed (leave-one-model-out, each model once, when there
    are fewer than 100 models; model i then draws its anchors with seed i mod `seeds`, so one
    lucky or unlucky anchor draw is not shared by every held-out model). `top`: the strongest
    10% held out (at least 2), the same models for every seed. `chronological`: the newest
    10%, by the `model_dates` in the outputs' meta.
    """
    m = outputs.n_models
    if split == "random":
        if m < LEAVE_ONE_OUT_BELOW:
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
    else:
        raise ValueError(f"unknown split '{split}'. Fix: use one of {', '.join(SPLITS)}")
    n_out = max(2, int(round(TOP_HOLDOUT * m)))
    order = np.argsort(key, kind="stable")
    for seed in range(seeds):
        yield Split(split, seed, np.sort(order[:-n_out]), np.sort(order[-n_out:]))


def metrics(true: np.ndarray, predictions: Sequence[Prediction]) -> dict[str, float]:
    """MAE and worst error in percentage points, rank correlations, interval coverage/width."""
    pred = np.array([p.score for p in predictions])
    lower = np.array([p.lower for p in predictions])
    upper = np.array([p.upper for p in predictions])
    error = np.abs(pred - true) * 100
    ranked = len(true) > 2 and np.ptp(true) > 0 and np.ptp(pred) > 0
    return {
        "mae_pp": float(error.mean()),
        "max_error_pp": float(error.max()),
        "spearman": float(spearmanr(true, pred).statistic) if ranked else float("nan"),
        "kendall": float(kendalltau(true, pred).statistic) if ranked else float("nan"),
        "coverage90": float(np.mean((true >= lower) & (true <= upper))),
        "width90_pp": float(np.mean(upper - lower) * 100),
        "ood_rate": float(np.mean([p.out_of_population for p in predictions])),
    }


def evaluate(outputs: ModelOutputs, methods: Sequence[str], ks: Sequence[int],
             splits: Sequence[str], seeds: int = 5, progress: bool = True) -> pd.DataFrame:
    """One row per (split, k, method, seed) with the metrics on that seed's held-out models.

    Leave-one-model-out splits are pooled into one set of predictions (seed 0).
    """
    plan = {name: list(model_splits(outputs, name, seeds)) for name in splits}
    total = sum(len(s) for s in plan.values()) * len(ks) * len(methods)
    bar = tqdm(total=total, desc="evaluate", disable=not progress)
    scores = outputs.scores()
    rows = []
    for name, split_list in plan.items():
        leave_one_out = all(len(s.held_out) == 1 for s in split_list)
        for k in ks:
            for method in methods:
                by_seed: dict[int, tuple[list, list]] = {}
                for split in split_list:
                    bench = condense(outputs.take_models(split.references),
                                     method_settings(method, k, split.seed))
                    predicted, true = by_seed.setdefault(0 if leave_one_out else split.seed,
                                                         ([], []))
                    predicted.extend(bench.predict(outputs.take_models(split.held_out)))
                    true.extend(scores[split.held_out])
                    bar.update()
                rows.extend({"split": name, "k": k, "method": method, "seed": seed,
                             "n_held_out": len(true), **metrics(np.array(true), predicted)}
                            for seed, (predicted, true) in by_seed.items())
    bar.close()
    return pd.DataFrame(rows)


def summarize(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean metrics over seeds per (split, k, method), with the MAE's standard deviation."""
    keys = ["split", "k", "method"]
    metric_columns = [c for c in per_seed.columns if c not in keys + ["seed"]]
    grouped = per_seed.groupby(keys, sort=False)
    table = grouped[metric_columns].mean()
    table["mae_pp_std"] = grouped["mae_pp"].std(ddof=0)
    table["seeds"] = grouped["seed"].nunique()
    return table.reset_index()
