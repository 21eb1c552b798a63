"""Cost of the online phase: one checkpoint on k anchors vs on the full benchmark (N samples).

The same backend (hf, a GPT-2 built in code, random weights) runs both through the scheduler,
side by side in this one process. Reported: scoring time with model loading excluded (target
speed-up >= 0.8 x N/k), and end to end (actor start, model load, scoring) beside it.

    python examples/benchmarks/bench_anchors_vs_full.py [--samples 2000] [--k 100] [--repeats 3]
    # the real SmolLM2-135M (a checkpoint of its sweep) on BIG-bench tasks, hf or vllm backend:
    python examples/benchmarks/bench_anchors_vs_full.py --smollm2 base --backend hf \
        --bigbench-tasks implicatures sports_understanding --k 30
    # on a GPU, a GPT-2-small-sized model on an MMLU-sized task:
    python examples/benchmarks/bench_anchors_vs_full.py --device cuda --samples 14042 \
        --layers 12 --dims 768 --hf-batch 256 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from bench_common import (add_model_arguments, arithmetic_task, load_average, local_ray,
                          model_specs, timed_evaluation)

from disco_ray.backends.base import ModelSpec
from disco_ray.tasks.base import Task

TASKS_DIR = "~/.cache/disco_ray/bigbench-1.0.0/bigbench/benchmark_tasks"
VLLM_CPU = {"gpu_memory_utilization": 0.1, "max_model_len": 1024}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating measurements per setting; the fastest scoring is used")
    add_model_arguments(parser, layers=4, dims=128, hf_batch=16)
    parser.add_argument("--smollm2", metavar="CHECKPOINT",
                        help="score this SmolLM2-135M sweep checkpoint (e.g. base) instead of a "
                             "GPT-2 built in code, on the --bigbench-tasks")
    parser.add_argument("--backend", choices=("hf", "vllm"), default="hf",
                        help="with --smollm2: the backend that hosts it")
    parser.add_argument("--bigbench-tasks", nargs="+", default=["implicatures"])
    parser.add_argument("--tasks-dir", default=TASKS_DIR)
    parser.add_argument("--limit", type=int, default=None, help="examples per BIG-bench task")
    return parser.parse_args()


def real_model(args: argparse.Namespace) -> tuple[Task, list[ModelSpec]]:
    """The BIG-bench task and the SmolLM2 sweep checkpoint `args.smollm2` as one spec."""
    from disco_ray.tasks.bigbench import task
    from disco_ray.zoo.smollm2_sweep import checkpoints

    (path,) = checkpoints([args.smollm2]).values()
    options = ({"batch_size": args.hf_batch} if args.backend == "hf" else dict(VLLM_CPU))
    spec = ModelSpec(f"smollm2-{args.smollm2}", args.backend, str(path), device="cpu",
                     options=options)
    return task(args.tasks_dir, args.bigbench_tasks, limit=args.limit), [spec]


def main() -> None:
    args = parse_args()
    real = real_model(args) if args.smollm2 else None
    task = real[0] if real else arithmetic_task(args.samples)
    anchors = task.subset(sorted(random.Random(0).sample(task.sample_ids, args.k)))
    sets = {"full": task.samples, "anchors": anchors.samples}
    best: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, local_ray(1):
        specs = real[1] if real else model_specs(Path(tmp), 1, args)
        for _ in range(args.repeats):
            for label, samples in sets.items():
                wall, (run,) = timed_evaluation(specs, samples)
                print(f"{label:>7}: {len(samples):5d} samples  scoring {run.score_s:6.2f} s  "
                      f"model load {run.load_s:5.2f} s  end to end {wall:6.2f} s", flush=True)
                best[label] = min(best.get(label, (wall, run.load_s, run.score_s)),
                                  (wall, run.load_s, run.score_s), key=lambda t: t[2])
    (full_wall, _, full_score), (anchor_wall, _, anchor_score) = best["full"], best["anchors"]
    scoring, end_to_end = full_score / anchor_score, full_wall / anchor_wall
    n, k = len(task.samples), len(anchors.samples)
    print(f"best of {args.repeats}: N/k = {n}/{k} = {n / k:.1f}; scoring speed-up (loading "
          f"excluded) {scoring:.1f}x = {scoring / (n / k):.2f} x N/k (target >= 0.8); "
          f"end-to-end speed-up {end_to_end:.1f}x; load average {load_average()}; "
          + (f"SmolLM2-135M {args.smollm2} ({args.backend}) on {', '.join(args.bigbench_tasks)}"
             if real else f"{args.layers} layers x {args.dims} dims on {args.device}, "
             f"dtype {args.dtype}"))


if __name__ == "__main__":
    main()
