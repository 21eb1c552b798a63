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

from bench_common import arithmetic_task

import disco_ray
from disco_ray.backends.base import ModelSpec, load_backend
from disco_ray.zoo.tiny_llm import build_once


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=14042)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--dims", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--hf-batch", type=int, default=256,
                        help="token sequences per forward pass (hf option batch_size)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    task = arithmetic_task(args.samples)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_once(Path(tmp) / "model", 0, args.layers, args.dims)
        backend = load_backend(ModelSpec("model", "hf", str(path), device=args.device,
                                         options={"batch_size": args.hf_batch,
                                                  "dtype": args.dtype}))
        backend.loglikelihoods(task.samples[:200])   # warm-up
        start = time.perf_counter()
        backend.loglikelihoods(task.samples)
        seconds = time.perf_counter() - start
    print(f"{Path(disco_ray.__file__).parent}: {args.samples} questions in {seconds:.2f} s "
          f"({args.layers} layers x {args.dims} dims, {args.device}, {args.dtype})")


if __name__ == "__main__":
    main()
