"""Which BIG-bench multiple-choice tasks separate SmolLM2-135M's sweep checkpoints?

Scores a few reference checkpoints of the sweep (never targets) with the `hf` backend on a
sample of each candidate task and prints accuracy beside chance (the mean of 1/options), so
that the tasks in configs/smollm_sweep.yaml are chosen where the base model is above chance and
the checkpoints differ.

    python examples/benchmarks/smollm_task_survey.py --limit 40 \
        --tasks emoji_movie general_knowledge ... --checkpoints base quant-w3-row prune-50
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from disco_ray.backends.base import ModelSpec
from disco_ray.backends.hf import HFBackend
from disco_ray.tasks.bigbench import task
from disco_ray.zoo.smollm2_sweep import DEFAULT_CACHE, checkpoints, default_split

DEFAULT_TASKS_DIR = "~/.cache/disco_ray/bigbench-1.0.0/bigbench/benchmark_tasks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-dir", default=DEFAULT_TASKS_DIR)
    parser.add_argument("--tasks", nargs="+", required=True)
    parser.add_argument("--checkpoints", nargs="+", default=["base", "quant-w3-row", "prune-50"])
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE)
    args = parser.parse_args()
    targets = set(default_split()[1])
    if targets & set(args.checkpoints):
        parser.error(f"{sorted(targets & set(args.checkpoints))} are targets; survey references")
    bench = task(args.tasks_dir, args.tasks, limit=args.limit)
    groups = [s.group for s in bench.samples]
    chance = {g: np.mean([1 / s.n_options for s in bench.samples if s.group == g])
              for g in args.tasks}
    print("chance: " + ", ".join(f"{g} {chance[g]:.2f}" for g in args.tasks))
    table = {}
    for name in args.checkpoints:
        (path,) = checkpoints([name], args.cache_dir).values()
        backend = HFBackend(ModelSpec(name, "hf", str(path), device="cpu",
                                      options={"batch_size": 16}))
        start = time.perf_counter()
        scores = bench.choice_scores(backend.loglikelihoods(bench.samples))
        rate = len(bench.samples) / (time.perf_counter() - start)
        correct = np.array([int(np.argmax(s)) == q.gold for s, q in zip(scores, bench.samples)])
        table[name] = {g: correct[[x == g for x in groups]].mean() for g in args.tasks}
        print(f"{name} ({rate:.2f} questions/s): " + ", ".join(
            f"{g} {table[name][g]:.2f}" for g in args.tasks), flush=True)
    print("task".ljust(28) + "chance " + " ".join(c[:14].rjust(14) for c in args.checkpoints))
    for g in args.tasks:
        print(g[:27].ljust(28) + f"{chance[g]:6.2f} "
              + " ".join(f"{table[c][g]:14.2f}" for c in args.checkpoints))


if __name__ == "__main__":
    main()
