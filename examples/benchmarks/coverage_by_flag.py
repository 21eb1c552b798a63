"""Interval coverage apart for flagged and unflagged targets, from the development table's kept
predictions (`dev_table/<data>.parquet`; no model is refitted).

A cell's `coverage90` pools every held-out model. On the `top` split that pooled number can land
in the 0.85-0.95 band while the targets the out-of-population check flags are covered almost
always, by wide intervals, and those it lets through are under-covered. This prints, per
data set, split, k and flag: the count, its share of the cell, MAE, coverage and mean width.

Usage (a second):

    python examples/benchmarks/coverage_by_flag.py --datasets openllm_mmlu,openllm_arc,mmlu_pro_29
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from disco_ray.evaluation import coverage_by_flag

HERE = Path(__file__).parent / "dev_table"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="openllm_mmlu,openllm_arc,mmlu_pro_29")
    parser.add_argument("--method", default="disco")
    args = parser.parse_args()
    for name in args.datasets.split(","):
        predictions = pd.read_parquet(HERE / f"{name}.parquet")
        table = coverage_by_flag(predictions[predictions["method"] == args.method])
        table = table.drop(columns="method").rename(columns={"out_of_population": "flagged"})
        print(f"\n{name}, {args.method}")
        print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))


if __name__ == "__main__":
    main()
