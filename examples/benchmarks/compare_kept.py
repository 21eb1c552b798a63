"""A rerun of development-table rows against the kept predictions, paired per seed and model.

The development table keeps every held-out prediction (`dev_table/<data>.parquet`). After a
change to code that a method uses, rerun that method's rows into another folder and compare:

    python examples/benchmarks/dev_table.py --data-dir ../shared/data/real \
        --datasets openllm_mmlu --methods disco --seeds 5 --workers 2 \
        --reuse examples/benchmarks/dev_table/openllm_mmlu.csv --out /tmp/rerun/openllm_mmlu
    python examples/benchmarks/compare_kept.py /tmp/rerun --methods disco

It prints, per data set, split, k and method that both hold: the kept and rerun MAE, the paired
change with its standard error (`evaluation.paired_change`), both coverages, and the largest
change of one prediction. A cell that moved although the change was not meant to touch it means
the kept rows were stale; one that moved as intended gives the change's effect, paired.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from disco_ray.evaluation import paired_change

KEPT = Path(__file__).resolve().parent / "dev_table"


def compare(rerun_dir: Path, kept_dir: Path, methods: list[str] | None) -> pd.DataFrame:
    """`paired_change` of every `<data>.parquet` in `rerun_dir` against its namesake in
    `kept_dir`, restricted to `methods` (all both hold when None), one `data` column added."""
    tables = []
    for rerun_file in sorted(rerun_dir.glob("*.parquet")):
        kept_file = kept_dir / rerun_file.name
        if not kept_file.is_file():
            print(f"{rerun_file}: no kept predictions at {kept_file}; skipped", file=sys.stderr)
            continue
        kept, rerun = pd.read_parquet(kept_file), pd.read_parquet(rerun_file)
        if methods:
            kept, rerun = (f[f["method"].isin(methods)] for f in (kept, rerun))
        table = paired_change(kept, rerun)
        tables.append(table.assign(data=rerun_file.stem))
    if not tables:
        raise SystemExit(f"no <data>.parquet in {rerun_dir} has kept predictions in {kept_dir}. "
                         "Fix: point the first argument at a dev_table.py --out folder")
    table = pd.concat(tables, ignore_index=True)
    return table[["data", *[c for c in table.columns if c != "data"]]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rerun", type=Path, help="a folder of rerun <data>.parquet files")
    parser.add_argument("--kept", type=Path, default=KEPT, help="the kept predictions' folder")
    parser.add_argument("--methods", default="", help="comma-separated; default: all")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m] or None
    table = compare(args.rerun, args.kept, methods)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
