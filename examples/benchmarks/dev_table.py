"""The development table: every method x k x split on the shared development data.

Usage:
    python examples/benchmarks/dev_table.py --data-dir ../shared/data/real \
        --datasets openllm_mmlu,openllm_arc,mmlu_pro_29 --out examples/benchmarks/dev_table

Writes `<out>.csv` (one row per dataset, split, k, method, mean over seeds; `disco*` rows also
carry their MAE gap to the best baseline with its paired standard error), `<out>.parquet`
(every held-out model's prediction and interval), `<out>.png` (MAE and coverage against k) and
`<out>.md` (a markdown table of MAE / Spearman / coverage per cell, the best MAE in bold, and
whether each `disco` variant is lowest-or-equal among the baselines). `--reuse CSV`
(repeatable) takes the rows and predictions of methods not run this time from an earlier run
(its CSV and the Parquet beside it), e.g. to rerun only `disco` after changing it:

    python examples/benchmarks/dev_table.py --datasets openllm_arc --methods disco \
        --reuse examples/benchmarks/dev_table/openllm_arc.csv --out /tmp/arc

`--replot` redraws the markdown and the figures (MAE and coverage against k per method, a
column per split, with `disco*` coverage intervals from `<out>.parquet` when it exists) from
`<out>.csv` without running anything.

Never point it at the reserved data while developing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from disco_ray.distributed.evaluation import cell_runner
from disco_ray.evaluation import (COVERAGE_CI_COLUMNS, coverage_interval, held_out_predictions,
                                  per_seed_metrics, summarize, with_gaps)
from disco_ray.io import atomic_path, read_outputs
from disco_ray.methods import METHODS
from disco_ray.report.plots import evaluation_plot


def cell_markdown(table: pd.DataFrame) -> str:
    """One markdown row per (dataset, split, k): MAE (Spearman) per method, best in bold, and
    per `disco` variant its coverage, whether it beats-or-ties every baseline (methods not
    named `disco*`) and its Spearman minus the best baseline's."""
    methods = [m for m in METHODS if m in set(table["method"])]
    variants = [m for m in methods if m.startswith("disco")]
    extra = [f"{v} {col}" for v in variants for col in
             ("coverage90", "best?", "MAE - best baseline's (SE)", "Spearman - best baseline's")]
    header = ("| data | split | k | " + " | ".join(methods + extra) + " |\n|"
              + "---|" * (len(methods) + len(extra) + 3))
    lines = [header]
    for (data, split, k), cell in table.groupby(["data", "split", "k"], sort=False):
        by_method = cell.set_index("method")
        best = by_method["mae_pp"].min()
        entries = []
        for m in methods:
            row = by_method.loc[m]
            text = f"{row.mae_pp:.2f} ({row.spearman:.3f})"
            entries.append(f"**{text}**" if row.mae_pp <= best + 1e-9 else text)
        baselines = by_method.drop(index=variants, errors="ignore")
        for v in variants:
            row = by_method.loc[v]
            wins = "yes" if row.mae_pp <= baselines["mae_pp"].min() + 1e-9 else "no"
            gap = (f"{row.gap_pp:+.2f} ({row.gap_se_pp:.2f})"
                   if pd.notna(row.get("gap_pp", float("nan"))) else "")
            entries += [f"{row.coverage90:.2f}", wins, gap,
                        f"{row.spearman - baselines['spearman'].max():+.3f}"]
        lines.append(f"| {data} | {split} | {k} | " + " | ".join(entries) + " |")
    return "\n".join(lines)


def reused_rows(earlier: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Rows of an earlier table for (dataset, method) pairs that `table` does not hold."""
    have, datasets = set(zip(table["data"], table["method"])), set(table["data"])
    keep = [(d, m) not in have and d in datasets for d, m in
            zip(earlier["data"], earlier["method"])]
    return earlier[keep]


def gaps_per_dataset(table: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """`table` with the `disco*` rows' gaps to the best baseline, per dataset (left empty, with a
    warning, where the predictions do not hold every method of the table), and each row's
    coverage interval."""
    parts = []
    for data, rows in table.groupby("data", sort=False):
        held = predictions[predictions["data"] == data]
        missing = set(rows["method"]) - set(held["method"])
        if missing:
            print(f"{data}: no predictions of {sorted(missing)}, so no gaps", flush=True)
        parts.append(with_gaps(rows.drop(columns=COVERAGE_CI_COLUMNS, errors="ignore"), held)
                     .merge(coverage_interval(held), on=["split", "k", "method"], how="left"))
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--datasets", default="openllm_mmlu,openllm_arc,mmlu_pro_29")
    parser.add_argument("--anchors", default="10,25,50,100")
    parser.add_argument("--splits", default="random,top")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=Path("examples/benchmarks/dev_table"))
    parser.add_argument("--reuse", type=Path, action="append", default=[],
                        help="earlier CSV of this script: rows of methods not run this time")
    parser.add_argument("--workers", type=int, default=1,
                        help="cells at once, as tasks on a local Ray (default 1: here)")
    parser.add_argument("--replot", action="store_true",
                        help="run nothing: redraw <out>.md and the figures from <out>.csv")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: at least 1 is needed")
    if args.replot:
        table, kept = pd.read_csv(args.out.with_suffix(".csv")), args.out.with_suffix(".parquet")
        write_outputs(gaps_per_dataset(table, pd.read_parquet(kept)) if kept.exists() else table,
                      args.out)
        return
    tables, predictions = [], []
    with cell_runner(None, args.workers, quiet=False) as runner:
        for name in args.datasets.split(","):
            start = time.perf_counter()
            outputs = read_outputs(args.data_dir / f"{name}.npz")
            ks = [int(k) for k in args.anchors.split(",") if int(k) <= outputs.n_samples]
            held = held_out_predictions(outputs, args.methods.split(","), ks,
                                        args.splits.split(","), args.seeds,
                                        runner=runner).assign(data=name)
            predictions.append(held)
            tables.append(summarize(per_seed_metrics(held)).assign(data=name))
            print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    table = pd.concat(tables, ignore_index=True)
    predictions = pd.concat(predictions, ignore_index=True)
    for path in args.reuse:
        table_rows = reused_rows(pd.read_csv(path), table)
        if path.with_suffix(".parquet").exists():
            predictions = pd.concat([predictions, reused_rows(
                pd.read_parquet(path.with_suffix(".parquet")), predictions)], ignore_index=True)
        table = pd.concat([table, table_rows], ignore_index=True)
    table = gaps_per_dataset(table, predictions)
    with atomic_path(args.out.with_suffix(".parquet")) as tmp:
        compact(predictions).to_parquet(tmp, index=False, compression="zstd")
    with atomic_path(args.out.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    write_outputs(table, args.out)


def compact(predictions: pd.DataFrame) -> pd.DataFrame:
    """The predictions with float32 scores and categorical labels (a small Parquet file)."""
    return predictions.astype({"true": "float32", "score": "float32", "lower": "float32",
                               "upper": "float32", "split": "category", "method": "category",
                               "model_id": "category", "data": "category"})


def write_outputs(table: pd.DataFrame, out: Path) -> None:
    """`<out>.md` (the markdown table, also printed) and a figure per dataset: `<out>.png`, or
    `<out>_<data>.png` when the table holds several."""
    markdown = cell_markdown(table)
    out.with_suffix(".md").write_text(markdown + "\n")
    print(markdown)
    several = table["data"].nunique() > 1
    for data, rows in table.groupby("data", sort=False):
        png = out.with_name(f"{out.name}_{data}.png") if several else out.with_suffix(".png")
        png.write_bytes(evaluation_plot(rows, data))


if __name__ == "__main__":
    main()
