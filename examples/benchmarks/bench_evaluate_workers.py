"""`disco-ray evaluate` with its cells in this process vs as tasks on a local Ray, side by side.

Each run is the CLI in a subprocess, timed from start to exit (Ray's start included), the worker
counts alternated so that a noisy machine hits each alike. It also reports the largest
difference in MAE between the runs' tables: Ray tasks run BLAS on one thread each, which
reorders floating-point sums, so the tables agree to rounding, not bit for bit.

    python examples/benchmarks/bench_evaluate_workers.py --data ../shared/data/real/openllm_mmlu.npz
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real/openllm_mmlu.npz"))
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--methods", default="disco,random_rf,gp_irt")
    parser.add_argument("--anchors", default="25,100")
    parser.add_argument("--split", default="random,top")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2, help="alternations of the worker counts")
    return parser.parse_args(argv)


def evaluate(args: argparse.Namespace, workers: int) -> tuple[float, list[dict]]:
    """Wall seconds of one `disco-ray evaluate` run and its table (JSON rows)."""
    command = [sys.executable, "-m", "disco_ray", "evaluate", "-q", "--json",
               "--data", str(args.data), "--methods", args.methods, "--anchors", args.anchors,
               "--split", args.split, "--seeds", str(args.seeds), "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}   # always a local Ray
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - start, [json.loads(line) for line in done.stdout.splitlines()]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    times: dict[int, list[float]] = {w: [] for w in counts}
    tables: dict[int, list[dict]] = {}
    for round_ in range(args.repeat):
        for workers in counts if round_ % 2 == 0 else counts[::-1]:
            seconds, tables[workers] = evaluate(args, workers)
            times[workers].append(seconds)
            print(f"round {round_ + 1}, {workers} worker(s): {seconds:.1f} s", flush=True)
    base = counts[0]
    print(f"\n{args.data.name}: methods {args.methods}, k {args.anchors}, split {args.split}, "
          f"{args.seeds} seeds, {len(tables[base])} table rows")
    print(f"{'workers':>8} {'best s':>8} {'mean s':>8} {'speed-up (best)':>16} "
          f"{'max |d MAE| pp':>15}")
    for workers in counts:
        diff = max(abs(a["mae_pp"] - b["mae_pp"]) for a, b in zip(tables[base], tables[workers]))
        best, mean = min(times[workers]), sum(times[workers]) / len(times[workers])
        print(f"{workers:>8} {best:>8.1f} {mean:>8.1f} {min(times[base]) / best:>15.2f}x "
              f"{diff:>15.2e}")


if __name__ == "__main__":
    main()
