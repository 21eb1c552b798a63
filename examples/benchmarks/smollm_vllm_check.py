"""A SmolLM2 sweep checkpoint under vLLM's CPU engine and the hf backend: same log-likelihoods?

Scores the BIG-bench test fixtures with both backends (vLLM in float32, 10% of host memory for
its KV cache) and prints the engine start and the largest difference.

    python examples/benchmarks/smollm_vllm_check.py ~/.cache/disco_ray/smollm2/drop-15-bfloat16
"""

import os
import sys
import time

import numpy as np


def main():
    from disco_ray.backends import load_backend
    from disco_ray.backends.base import ModelSpec
    from disco_ray.tasks.bigbench import task
    fixtures = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "bigbench")
    samples = task(fixtures, ["capitals", "yes_no"]).samples
    path = os.path.expanduser(sys.argv[1])
    hf = load_backend(ModelSpec("hf", "hf", path, device="cpu")).loglikelihoods(samples)
    start = time.perf_counter()
    vb = load_backend(ModelSpec("v", "vllm", path, device="cpu",
                                options={"gpu_memory_utilization": 0.1, "max_model_len": 512,
                                         "dtype": "float32"}))
    print(f"engine start {time.perf_counter() - start:.1f} s", flush=True)
    v = vb.loglikelihoods(samples)
    diff = max(np.abs(a - b).max() for a, b in zip(hf, v))
    same = all(int(np.argmax(a)) == int(np.argmax(b)) for a, b in zip(hf, v))
    print(f"{os.path.basename(path)}: largest |ll_vllm - ll_hf| = {diff:.2e}, same answers: {same}")


if __name__ == "__main__":
    main()
