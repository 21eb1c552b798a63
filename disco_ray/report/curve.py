"""Error against the number of anchors, cross-validated on the reference models only."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from disco_ray.condensed import condense
from disco_ray.evaluation import metrics, prediction_frame
from disco_ray.methods import method_settings
from disco_ray.outputs import ModelOutputs

CURVE_METHODS = ("pds_rf", "random_rf", "random_direct")
CURVE_KS = (10, 25, 50, 100)
HOLDOUT = 0.2


def curve_ks(run_k: int, n_samples: int) -> list[int]:
    """The k grid of the curve: a few standard values and the run's own k, at most N."""
    return sorted(k for k in {*CURVE_KS, run_k} if k <= n_samples)


def anchor_curve(references: ModelOutputs, ks: Sequence[int],
                 methods: Sequence[str] = CURVE_METHODS, seeds: int = 2) -> pd.DataFrame:
    """MAE (pp) per (method, k): mean and std over `seeds` random 80/20 splits of references.

    Each split condenses on 80% of the references and predicts the other 20%, so the curve
    says how well each method would have done on models like the references.
    """
    m = references.n_models
    n_out = max(1, int(round(HOLDOUT * m)))
    scores = references.scores()
    rows = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(m)
        held_out, kept = np.sort(order[:n_out]), np.sort(order[n_out:])
        train, test = references.take_models(kept), references.take_models(held_out)
        for k in ks:
            for method in methods:
                predictions = condense(train, method_settings(method, k, seed)).predict(test)
                rows.append({"method": method, "k": k, "seed": seed,
                             **metrics(prediction_frame(predictions, scores[held_out]))})
    per_seed = pd.DataFrame(rows)
    grouped = per_seed.groupby(["method", "k"], sort=False)["mae_pp"]
    return grouped.agg(mae_pp="mean", mae_pp_std=lambda x: x.std(ddof=0)).reset_index()
