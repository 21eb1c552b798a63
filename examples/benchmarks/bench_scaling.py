"""Scaling of the model scheduler: N tiny checkpoints on a local Ray with 1 vs 2 worker CPUs.

Each checkpoint is one actor (1 CPU, so one torch thread) that loads its model, scores the task
and is killed. With W CPUs, W actors run at once. Scaling efficiency = t1 / (W * tW); the
target is >= 85% for W = 2. Both settings run side by side, in this one process. Also printed:
the share of the W worker slots spent loading or scoring (the rest is process start-up and
scheduling); other processes on the machine (load average) slow the 2-worker run down.

    python examples/benchmarks/bench_scaling.py [--models 8] [--samples 300] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_common import (arithmetic_task, load_average, local_ray, tiny_checkpoints,
                          timed_evaluation)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternating measurements per setting; the best is used")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    task = arithmetic_task(args.samples)
    times: dict[int, list[float]] = {1: [], args.workers: []}
    with tempfile.TemporaryDirectory() as tmp:
        specs = tiny_checkpoints(Path(tmp), args.models, args.layers, args.dims)
        for _ in range(args.repeats):
            for workers in times:
                with local_ray(workers):
                    wall, runs = timed_evaluation(specs, task.samples)
                times[workers].append(wall)
                report(workers, wall, runs, args)
    t1, tw = min(times[1]), min(times[args.workers])
    print(f"best of {args.repeats}: t1 {t1:.1f} s, t{args.workers} {tw:.1f} s; speed-up "
          f"{t1 / tw:.2f}x with {args.workers} workers; scaling efficiency "
          f"t1/({args.workers}*t{args.workers}) = {t1 / (args.workers * tw):.0%} (target >= 85%)")


def report(workers: int, wall: float, runs: list, args: argparse.Namespace) -> None:
    """One line per measurement: wall time, per-model load and scoring, busy worker slots."""
    load = sum(r.load_s for r in runs) / len(runs)
    score = sum(r.score_s for r in runs) / len(runs)
    busy = args.models * (load + score) / (workers * wall)
    print(f"{workers} worker(s): {wall:6.1f} s for {args.models} models x {args.samples} "
          f"samples (per model: load {load:.1f} s, scoring {score:.1f} s; worker slots busy "
          f"loading/scoring {busy:.0%}; machine load average {load_average()})", flush=True)


if __name__ == "__main__":
    main()
