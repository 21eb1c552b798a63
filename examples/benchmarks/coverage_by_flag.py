"""Interval coverage apart for each warning, and how many targets stronger than every reference
are warned, from the development table's kept predictions (`dev_table/<data>.parquet`; no model
is refitted).

A cell's `coverage90` pools every held-out model. On the `top` split that pooled number can land
in the 0.85-0.95 band while the targets the out-of-population check flags are covered almost
always, by wide intervals, and the others are under-covered. This prints, per data set:

  * per split, k and warning (out of population, at the frontier, none): the count, its share of
    the cell, MAE, coverage and mean width;
  * per split and k: the pooled coverage with its 90% confidence interval (`coverage_interval`:
    Wilson, each held-out model counted once), and whether that interval meets the 0.85-0.95
    band (a miss it does not meet is beyond chance);
  * per split and k: the share of held-out targets stronger than every reference (`beyond`),
    the share of those the out-of-population flag warns (`flagged`), the share the flag or the
    frontier warning warns (`warned`), and the share of the other targets warned anyway
    (`false alarms`).

The kept predictions predate the frontier warning, so it is recomputed here by its rule (not
flagged, and the interval's upper end above the strongest reference's score), with each cell's
references rebuilt by `model_splits` from the data file.

Usage (seconds):

    python examples/benchmarks/coverage_by_flag.py --data-dir ../shared/data/real \
        --datasets openllm_mmlu,openllm_arc,mmlu_pro_29
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from disco_ray.evaluation import coverage_by_flag, coverage_interval, covered, model_splits
from disco_ray.io import read_outputs
from disco_ray.outputs import ModelOutputs
from disco_ray.uncertainty import at_frontier

HERE = Path(__file__).parent / "dev_table"


def best_reference_scores(predictions: pd.DataFrame, outputs: ModelOutputs) -> np.ndarray:
    """Per prediction, the strongest score among the references of its cell."""
    scores, ids = outputs.scores(), outputs.model_ids.astype(str)
    seeds = int(predictions["seed"].max()) + 1
    best = {}
    for name in predictions["split"].unique():
        splits = list(model_splits(outputs, name, seeds))
        leave_one_out = all(len(s.held_out) == 1 for s in splits)
        for split in splits:
            for i in split.held_out:
                best[name, 0 if leave_one_out else split.seed, ids[i]] = \
                    scores[split.references].max()
    return np.array([best[key] for key in
                     zip(predictions["split"], predictions["seed"], predictions["model_id"])])


def warned_beyond(predictions: pd.DataFrame, best: np.ndarray) -> pd.DataFrame:
    """Per (split, k): how many targets lie beyond every reference, and how many are warned."""
    rows = predictions.assign(beyond=predictions["true"].to_numpy() > best,
                              warned=predictions["out_of_population"]
                              | predictions["at_frontier"])
    table = []
    for (split, k), cell in rows.groupby(["split", "k"], observed=True):
        beyond, inside = cell[cell["beyond"]], cell[~cell["beyond"]]
        table.append({"split": split, "k": k, "beyond": cell["beyond"].mean(),
                      "flagged": beyond["out_of_population"].mean() if len(beyond) else np.nan,
                      "warned": beyond["warned"].mean() if len(beyond) else np.nan,
                      "false alarms": inside["warned"].mean() if len(inside) else np.nan})
    return pd.DataFrame(table)


def pooled_coverage(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per (split, k): the pooled coverage, its confidence interval, and whether the interval
    meets the band [0.85, 0.95]."""
    pooled = predictions.assign(coverage90=covered(predictions)).groupby(
        ["split", "k"], observed=True)["coverage90"].mean().reset_index()
    table = pooled.merge(coverage_interval(predictions).drop(columns="method"), on=["split", "k"])
    return table.assign(meets_band=(table["coverage90_lo"] <= 0.95)
                        & (table["coverage90_hi"] >= 0.85))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--datasets", default="openllm_mmlu,openllm_arc,mmlu_pro_29")
    parser.add_argument("--method", default="disco")
    args = parser.parse_args()
    for name in args.datasets.split(","):
        predictions = pd.read_parquet(HERE / f"{name}.parquet")
        predictions = predictions[predictions["method"] == args.method].reset_index(drop=True)
        best = best_reference_scores(predictions, read_outputs(args.data_dir / f"{name}.npz"))
        predictions["at_frontier"] = (~predictions["out_of_population"]
                                      & at_frontier(predictions["upper"].to_numpy(), best))
        table = coverage_by_flag(predictions).drop(columns="method")
        print(f"\n{name}, {args.method}")
        print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
        print(pooled_coverage(predictions).to_string(index=False,
                                                     float_format=lambda x: f"{x:.3f}"))
        print(warned_beyond(predictions, best).to_string(index=False,
                                                         float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
