"""The peers' own code beside disco_ray's methods, on the same model splits and seeds.

The peers' estimators (the DISCO authors' reference code with tinyBenchmarks' gp-IRT) run
through the kit in `../shared/tools/peer_gp_irt/` (its README says how to set it up), as a
subprocess in the kit's own Python environment, once per (data, split, seed); each run's
JSON-lines output is kept in `--out` and a rerun skips the runs whose file holds every k.
disco_ray's methods run on `disco_ray.evaluation.model_splits` of the same seeds (or come from
`--kept`); when any ran, the predictions are written to `--out/<data>.parquet`.

Usage (from the repository root, with ../shared beside it):
    nice -n 19 python examples/benchmarks/peer_comparison.py --peer-kit /work/peer_kit \
        --peer-code /work/peer_kit/peer --peer-python /work/peer_kit/venv_peer/bin/python \
        --splits random top --ks 25 100 --seeds 0 1 2 3 4 --peer-jobs 2

Prints one markdown table: per (data, split, k) each method's MAE (pp) averaged over the seeds,
the lowest in bold, and for each `--compare` method its MAE minus that of the best other method
and minus the peers' gp-IRT, each with the standard error of the per-seed difference. On `top`
every seed holds out the same models, so there the errors count the seeds' anchor draws and fits.
`--kept DIR` reads disco_ray's predictions from `DIR/<data>.parquet` (`dev_table.py`'s or this
script's) for every method it holds at every requested split, k and seed; `--peer-kept-only`
runs no peer cell, needs no kit, and leaves out those without a kept output (each row counts
its seeds). With both, the table is redrawn at once from the kept outputs; the peer outputs of
the development table's splits and seeds are kept in `examples/benchmarks/peer_table/`:
    python examples/benchmarks/peer_comparison.py --kept examples/benchmarks/dev_table \
        --out examples/benchmarks/peer_table --peer-kept-only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from dev_table import compact

from disco_ray.distributed.evaluation import CellRunner, cell_runner
from disco_ray.evaluation import check_plan, evaluation_cells, per_seed_metrics
from disco_ray.io import atomic_path, read_outputs

PEER_GP_IRT = "peer_gp_irt_cal"
PEER_METHODS = ("peer_gp_irt_raw", PEER_GP_IRT, "peer_disco_rf", "peer_disco_knn")
KEYS = ["data", "split", "k"]


def peer_path(out: Path, data: Path, split: str, seed: int) -> Path:
    """Where the peer kit's output for one (data, split, seed) is kept."""
    return out / f"{data.stem}_{split}_s{seed}.jsonl"


def holds_ks(path: Path, ks: Sequence[int]) -> bool:
    """Whether a kept peer output exists and holds every peer method at every k of `ks`."""
    if not path.exists():
        return False
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(m, k) for m in PEER_METHODS for k in ks} <= {(r["method"], r["k"]) for r in rows}


def run_peer(args: argparse.Namespace, data: Path, split: str, seed: int) -> Path:
    """Run the peer kit on one (data, split, seed) unless its kept output holds every k; its
    log goes beside the output."""
    path = peer_path(args.out, data, split, seed)
    if holds_ks(path, args.ks):
        return path
    python = Path(args.peer_python)
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [str(python), str(args.peer_kit / "peer_run.py"), "--peer-code", str(args.peer_code),
               "--data", str(data.resolve()), "--split", split, "--seed", str(seed),
               "--ks", ",".join(map(str, args.ks)), "--work", str(args.out / "irt")]
    with atomic_path(path) as tmp, open(path.with_suffix(".log"), "w") as log:
        subprocess.run([*command, "--out", str(tmp)], env=env, stdout=log,
                       stderr=subprocess.STDOUT, check=True, cwd=args.peer_kit)
    print(f"peer: {path.name} done", flush=True)
    return path


def peer_per_seed(paths: Sequence[tuple[str, Path]], ks: Sequence[int]) -> pd.DataFrame:
    """The peer methods' MAE per (data, split, k, seed) from their kept outputs, given as
    (data name, path) pairs."""
    rows = [{**json.loads(line), "data": data} for data, path in paths
            for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise FileNotFoundError("no peer output to tabulate. Fix: run without --peer-kept-only")
    frame = pd.DataFrame(rows)
    return frame[frame["k"].isin(ks)][[*KEYS, "seed", "method", "mae_pp", "n_test"]]


def kept_predictions(kept: Path | None, data: str, methods: Sequence[str], splits: Sequence[str],
                     ks: Sequence[int], seeds: Sequence[int]) -> pd.DataFrame:
    """The predictions in `kept/<data>.parquet` of each method of `methods` that it holds at
    every requested split, k and seed (empty when there is no such file)."""
    path = kept / f"{data}.parquet" if kept else None
    if path is None or not path.exists():
        return pd.DataFrame()
    held = pd.read_parquet(path)
    held = held[held["method"].isin(methods) & held["split"].isin(splits) & held["k"].isin(ks)
                & held["seed"].isin(seeds)]
    wanted = len(splits) * len(ks) * len(seeds)
    cells = held.groupby("method", observed=True)[["split", "k", "seed"]].apply(
        lambda rows: len(rows.drop_duplicates()))
    return held[held["method"].isin(cells[cells == wanted].index)]


def our_predictions(data: Path, methods: Sequence[str], splits: Sequence[str],
                    ks: Sequence[int], seeds: Sequence[int], runner: CellRunner) -> pd.DataFrame:
    """disco_ray's held-out predictions of `methods` on `model_splits` of the given seeds."""
    outputs = read_outputs(data)
    check_plan(outputs, methods, ks, splits, max(seeds) + 1)
    cells = [cell for cell in evaluation_cells(outputs, methods, ks, splits, max(seeds) + 1)
             if cell.split.seed in seeds]
    frames = [frame for _, frame in runner(outputs, cells)]
    return pd.concat(frames, ignore_index=True).assign(data=data.stem)


def ours(args: argparse.Namespace, data: Path, runner: CellRunner) -> pd.DataFrame:
    """disco_ray's predictions on `data`: kept ones where `--kept` holds them, the rest run now;
    all of them written to `--out/<data>.parquet` when any ran now."""
    kept = kept_predictions(args.kept, data.stem, args.methods, args.splits, args.ks, args.seeds)
    have = set(kept["method"]) if len(kept) else set()
    missing = [m for m in args.methods if m not in have]
    fresh = (our_predictions(data, missing, args.splits, args.ks, args.seeds, runner)
             if missing else pd.DataFrame())
    print(f"{data.stem}: kept {sorted(have)}, ran {missing}", flush=True)
    predictions = pd.concat([kept, fresh], ignore_index=True)
    if missing:
        with atomic_path(args.out / f"{data.stem}.parquet") as tmp:
            compact(predictions).to_parquet(tmp, index=False, compression="zstd")
    return predictions


def paired_gap(cell: pd.DataFrame, method: str, other: str) -> str:
    """`method`'s mean MAE minus `other`'s, with the standard error of the per-seed difference."""
    difference = (cell[method] - cell[other]).dropna()
    se = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else np.nan
    return f"{difference.mean():+.2f} ({se:.2f})"


def cell_row(cell: pd.DataFrame, compare: Sequence[str]) -> list[str]:
    """One table row's entries: the methods' mean MAE (lowest in bold), then per compared
    method its gap to the best other method (named) and to the peers' gp-IRT."""
    mean = cell.mean()
    entries = [f"**{v:.2f}**" if v <= mean.min() + 1e-9 else f"{v:.2f}" for v in mean]
    for method in compare:
        best = mean.drop(method).idxmin()
        entries += [f"{paired_gap(cell, method, best)} {best}",
                    paired_gap(cell, method, PEER_GP_IRT)]
    return entries


def comparison_table(per_seed: pd.DataFrame, methods: Sequence[str], compare: Sequence[str]) -> str:
    """The markdown table of `per_seed` (MAE per data, split, k, seed and method): the peer
    methods, then `methods`, in that order; only seeds that every method has."""
    wide = per_seed.pivot_table(index=[*KEYS, "seed"], columns="method", values="mae_pp")
    wide = wide[[m for m in (*PEER_METHODS, *methods) if m in wide.columns]].dropna()
    compare = [m for m in compare if m in wide.columns]
    extra = [f"{m} {col}" for m in compare for col in ("- best other (SE)", "- peer gp-IRT (SE)")]
    columns = ["data", "split", "k", "seeds", *wide.columns, *extra]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for (data, split, k), cell in wide.groupby(level=KEYS, sort=False):
        entries = [data, split, str(k), str(len(cell)), *cell_row(cell, compare)]
        lines.append("| " + " | ".join(entries) + " |")
    return "\n".join(lines)


def check_held_out(peer: pd.DataFrame, our: pd.DataFrame) -> None:
    """Refuse a table whose peer runs held out other numbers of models than disco_ray's splits."""
    counts = our.groupby(["data", "split", "seed"], observed=True)["model_id"].nunique()
    for row in peer.drop_duplicates(["data", "split", "seed"]).itertuples():
        if counts.get((row.data, row.split, row.seed)) != row.n_test:
            raise RuntimeError(f"{row.data} {row.split} seed {row.seed}: the peer kit held out "
                               f"{row.n_test} models, model_splits "
                               f"{counts.get((row.data, row.split, row.seed))}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-kit", type=Path, help="the kit's folder")
    parser.add_argument("--peer-code", type=Path, help="a checkout of arubique/disco-public")
    parser.add_argument("--peer-python", help="the kit's environment's python")
    data_dir = Path("../shared/data/real")
    parser.add_argument("--data", type=Path, nargs="+",
                        default=[data_dir / "openllm_mmlu.npz", data_dir / "openllm_arc.npz"])
    parser.add_argument("--splits", nargs="+", default=["random", "top"])
    parser.add_argument("--ks", type=int, nargs="+", default=[25, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=["gp_irt", "jsd_rf", "jsd_knn", "disco"])
    parser.add_argument("--compare", nargs="+", default=["disco", "gp_irt"])
    parser.add_argument("--out", type=Path, help="kept outputs (default: <peer-kit>/out)")
    parser.add_argument("--kept", type=Path, help="folder of <data>.parquet predictions to reuse")
    parser.add_argument("--peer-jobs", type=int, default=1, help="peer runs at once")
    parser.add_argument("--peer-kept-only", action="store_true",
                        help="run no peer cell: leave out those without a kept output")
    parser.add_argument("--workers", type=int, default=1, help="disco_ray cells at once (Ray)")
    args = parser.parse_args()
    kit = {"--peer-kit": args.peer_kit, "--peer-code": args.peer_code,
           "--peer-python": args.peer_python}
    if not args.peer_kept_only and None in kit.values():
        parser.error(f"running the peer kit needs {', '.join(kit)}. Fix: give them (the kit's "
                     "README says how to set it up), or --peer-kept-only with --out")
    if args.out is None and args.peer_kit is None:
        parser.error("--peer-kept-only without --peer-kit needs --out, the folder of kept peer "
                     "outputs. Fix: e.g. --out examples/benchmarks/peer_table")
    if args.peer_kit is not None:
        args.peer_kit, args.peer_code = args.peer_kit.resolve(), args.peer_code.resolve()
    args.out = (args.out or args.peer_kit / "out").resolve()
    return args


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.peer_jobs) as pool:
        jobs: list[tuple[str, Future[Path]]] = [
            (data.stem, pool.submit(run_peer, args, data, split, seed))
            for seed in args.seeds for data in args.data for split in args.splits
            if not args.peer_kept_only or holds_ks(peer_path(args.out, data, split, seed), args.ks)]
        with cell_runner(None, args.workers, quiet=True) as runner:
            our = pd.concat([ours(args, data, runner) for data in args.data], ignore_index=True)
        peer = peer_per_seed([(data, job.result()) for data, job in jobs], args.ks)
    check_held_out(peer, our)
    mine = pd.concat([per_seed_metrics(rows).assign(data=data)
                      for data, rows in our.groupby("data", sort=False, observed=True)])
    per_seed = pd.concat([peer, mine[[*KEYS, "seed", "method", "mae_pp"]]], ignore_index=True)
    print(comparison_table(per_seed, args.methods, args.compare))


if __name__ == "__main__":
    main()
