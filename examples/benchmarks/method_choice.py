"""Would the references choose gp-IRT over `disco`? The whole method as a candidate.

`disco` chooses its anchors, its stack's weights and its route by one error on the reference
models (`validation_mae_`: out-of-fold errors pooled with an extrapolation CV that predicts the
references' strongest tenth from the others). This script puts gp-IRT under the same error: a
stack whose only member is gp-IRT, on `gp_irt`'s own anchors (clustered, centroid), once on the
multidimensional IRT (its predictions are `gp_irt`'s) and once on the 1-D one. For each
candidate it prints, in pp:

  * `validation`: the error `disco` is chosen by (references only);
  * `extrapolation CV`: the mean absolute residual of the out-of-population stack on the
    references' strongest tenth (for `disco` its weights are fitted on those very rows, which
    flatters it; a one-member stack fits no weights);
  * `held-out` and `bias`: the held-out models' MAE and mean error, which no choice may read.

Usage (from the repository root, with ../shared beside it; about 20 s a cell, 10 min in all):
    python examples/benchmarks/method_choice.py \
        --data ../shared/data/real/openllm_mmlu.npz ../shared/data/real/openllm_arc.npz \
        --split top --ks 25 50 100 --seeds 0 1 2 3 4

Never point it at the reserved data while developing.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from split_cells import run_cells, split_models

from disco_ray.design import CondenseSettings
from disco_ray.methods import GP_IRT, GP_MIRT, method_settings
from disco_ray.outputs import ModelOutputs
from disco_ray.search import condense

CANDIDATES = {"disco": None, "gp-IRT, multidimensional": GP_MIRT, "gp-IRT, 1-D": GP_IRT}


def candidate_settings(name: str, k: int, seed: int) -> CondenseSettings:
    """`disco`'s settings, or `gp_irt`'s anchors with a one-member stack of the given gp-IRT."""
    if CANDIDATES[name] is None:
        return method_settings("disco", k, seed)
    stack = {"regressor": "stack", "members": [CANDIDATES[name]]}
    return replace(method_settings("gp_irt", k, seed), metamodels=(stack,))


def measure(outputs: ModelOutputs, split: str, k: int, seed: int) -> list[dict]:
    """One row per candidate: its validation errors on the references and its held-out error."""
    references, held_out = split_models(outputs, split, seed)
    rows = []
    for name in CANDIDATES:
        bench = condense(references, candidate_settings(name, k, seed))
        stack = bench.metamodel
        error = np.array([p.score for p in bench.predict(held_out)]) - held_out.scores()
        residuals = stack.top_residuals_
        rows.append({"split": split, "k": k, "seed": seed, "candidate": name,
                     "validation": 100 * stack.validation_mae_,
                     "extrapolation CV": (np.nan if residuals is None
                                          else 100 * float(np.mean(np.abs(residuals)))),
                     "held-out": 100 * float(np.mean(np.abs(error))),
                     "bias": 100 * float(np.mean(error))})
    return rows


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Means over the seeds, and how many seeds' validation chose each candidate."""
    chosen = rows.loc[rows.groupby(["data", "split", "k", "seed"])["validation"].idxmin()]
    table = rows.groupby(["data", "split", "k", "candidate"], sort=False)[
        ["validation", "extrapolation CV", "held-out", "bias"]].mean()
    table["chosen (seeds)"] = chosen.groupby(["data", "split", "k", "candidate"]).size()
    return table.fillna({"chosen (seeds)": 0}).astype({"chosen (seeds)": int}).round(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--split", default="top", choices=["random", "top"])
    parser.add_argument("--ks", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    rows = run_cells(args.data, args.ks, args.seeds,
                     lambda outputs, k, seed: measure(outputs, args.split, k, seed))
    print(summary(rows).reset_index().to_markdown(index=False))


if __name__ == "__main__":
    main()
