"""Seconds the hf backend takes to score an MMLU-sized task, this checkout's code.

Compares code versions when run from two checkouts alternately (side by side on one machine):

    python examples/benchmarks/bench_hf_scoring.py [--device cuda] [--dtype bfloat16] \\
        [--layers 12] [--dims 768] [--samples 14042]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_common import add_model_arguments, arithmetic_task, model_specs

import disco_ray
from disco_ray.backends.loading import load_backend


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=14042)
    add_model_arguments(parser, layers=1, dims=32, hf_batch=256)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    task = arithmetic_task(args.samples)
    with tempfile.TemporaryDirectory() as tmp:
        backend = load_backend(model_specs(Path(tmp), 1, args)[0])
        backend.loglikelihoods(task.samples[:200])   # warm-up
        start = time.perf_counter()
        backend.loglikelihoods(task.samples)
        seconds = time.perf_counter() - start
    print(f"{Path(disco_ray.__file__).parent}: {args.samples} questions in {seconds:.2f} s "
          f"({args.layers} layers x {args.dims} dims, {args.device}, {args.dtype})")


if __name__ == "__main__":
    main()
