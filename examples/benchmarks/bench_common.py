"""Shared pieces of the Ray-layer benchmarks: a synthetic task, tiny checkpoints, a local Ray."""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import time
from pathlib import Path
from typing import Iterator, Sequence

from disco_ray.backends.base import ModelSpec
from disco_ray.config import ResourcesConfig
from disco_ray.distributed.scheduler import ModelRun, evaluate_models
from disco_ray.tasks.base import MCSample, Task
from disco_ray.zoo.tiny_llm import build_once


def arithmetic_task(n: int, seed: int = 0) -> Task:
    """`n` four-choice arithmetic questions (deterministic)."""
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        wrong = rng.sample([a + b + d for d in (-100, -10, -1, 1, 10, 100)], 3)
        options = [a + b] + wrong
        rng.shuffle(options)
        samples.append(MCSample(f"q{i}", f"Question: What is {a} + {b}?\nAnswer:",
                                tuple(f" {o}" for o in options), options.index(a + b)))
    return Task("arithmetic", tuple(samples))


def add_model_arguments(parser: argparse.ArgumentParser, layers: int, dims: int,
                        hf_batch: int) -> None:
    """--layers/--dims of the GPT-2 built in code; --device/--dtype/--hf-batch of the hf backend."""
    parser.add_argument("--layers", type=int, default=layers)
    parser.add_argument("--dims", type=int, default=dims)
    parser.add_argument("--device", default="cpu", help="hf backend device: cpu or cuda")
    parser.add_argument("--dtype", default="auto", help="hf backend dtype (auto = float32 here)")
    parser.add_argument("--hf-batch", type=int, default=hf_batch,
                        help="token sequences per forward pass (hf option batch_size)")


def model_specs(directory: Path, count: int, args: argparse.Namespace) -> list[ModelSpec]:
    """`tiny_checkpoints` as `add_model_arguments`' options say."""
    return tiny_checkpoints(directory, count, args.layers, args.dims, args.device,
                            {"batch_size": args.hf_batch, "dtype": args.dtype})


def tiny_checkpoints(directory: Path, count: int, n_layer: int, n_embd: int,
                     device: str = "cpu", options: dict | None = None) -> list[ModelSpec]:
    """`count` tiny GPT-2 checkpoints (built once under `directory`) as hf specs on `device`;
    `options` are the hf backend's (default: batch_size 16)."""
    return [ModelSpec(f"ckpt-{seed}", "hf",
                      str(build_once(directory / f"ckpt-{seed}", seed, n_layer, n_embd)),
                      device=device, options=dict(options or {"batch_size": 16}))
            for seed in range(count)]


@contextlib.contextmanager
def local_ray(num_cpus: int) -> Iterator[None]:
    """A local Ray with `num_cpus` CPUs (and every GPU), no dashboard, quiet; shut down
    afterwards."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def timed_evaluation(specs: Sequence[ModelSpec], samples: Sequence[MCSample],
                     batch_size: int = 128) -> tuple[float, list[ModelRun]]:
    """Wall seconds to score `samples` with every model (actors started, loaded, killed)."""
    start = time.perf_counter()
    runs = evaluate_models(specs, samples,
                           ResourcesConfig(cpus_per_model=1, batch_size=batch_size),
                           lambda spec, values: None, progress=False)
    failed = {r.name: r.error for r in runs if r.error}
    if failed:
        raise RuntimeError(f"models failed: {failed}")
    return time.perf_counter() - start, runs


def load_average() -> str:
    """The machine's 1-minute load average (other processes skew timings on 2 cores)."""
    return f"{os.getloadavg()[0]:.1f}"
