"""The `vllm` backend: request building and output parsing without vLLM, and against a fake
engine that answers like vLLM from a tiny GPT-2; the real engine only where vLLM and CUDA exist."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from disco_ray.backends.base import ModelSpec
from disco_ray.backends.vllm import (VllmEngine, VLLMBackend, letter_logprobs, letter_options,
                                     option_logprob, option_prompt)
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


class FakeLLM:
    """Answers `generate` like vLLM 0.29's LLM, computing logprobs with a HF causal LM."""

    def __init__(self, path: Path) -> None:
        import transformers
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(path)
        self.params_seen: list = []

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, params, use_tqdm=True):
        import torch
        self.params_seen.append(params)
        outputs = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(self.model(torch.tensor([ids])).logits[0], -1)
            outputs.append(SimpleNamespace(
                prompt_logprobs=([None] + [_top(logp[i], params.prompt_logprobs, ids[i + 1])
                                           for i in range(len(ids) - 1)]
                                 if getattr(params, "prompt_logprobs", None) is not None
                                 else None),
                outputs=[SimpleNamespace(logprobs=[_top(logp[-1], params.logprobs, None)]
                                         if getattr(params, "logprobs", None) else None)]))
        return outputs


def _top(row, k: int, token: int | None) -> dict:
    """vLLM's dict for one position: the top-k tokens plus `token`, with ranks."""
    ranks = (row > row.unsqueeze(-1)).sum(-1) + 1  # rank of each token, 1 = argmax
    chosen = set(row.topk(min(k, len(row))).indices.tolist())
    if token is not None:
        chosen.add(token)
    return {t: lp(float(row[t]), int(ranks[t])) for t in chosen}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("transformers")
    from disco_ray.backends.hf import HFBackend
    from disco_ray.backends.tiny import build_tiny_gpt2
    path = build_tiny_gpt2(tmp_path_factory.mktemp("tiny") / "gpt2", seed=5)
    return path, HFBackend(ModelSpec("ref", "hf", str(path), device="cpu"))


def _fake_backend(path: Path, max_model_len: int = 512, **options) -> VLLMBackend:
    engine = VllmEngine(FakeLLM(path), lambda **kw: SimpleNamespace(**kw),
                        lambda prompt_token_ids: {"prompt_token_ids": prompt_token_ids},
                        max_model_len)
    return VLLMBackend(ModelSpec("tiny", "vllm", str(path), options=options), engine=engine)


@pytest.mark.parametrize("options", [{}, {"letter_fast_path": True, "letter_logprobs": 100},
                                     {"letter_fast_path": True, "letter_logprobs": 2}])
def test_fake_engine_matches_hf_backend(tiny, options):
    path, reference = tiny
    samples = load_task(FIXTURE).samples + LETTER_SAMPLES
    backend = _fake_backend(path, **options)
    got, got_greedy = backend.loglikelihoods_and_greedy(samples)
    want, want_greedy = reference.loglikelihoods_and_greedy(samples)
    for g, w, gg, wg in zip(got, want, got_greedy, want_greedy):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(gg, wg)
    params = backend.engine.llm.params_seen[-1]
    assert (params.temperature, params.max_tokens, params.prompt_logprobs,
            params.detokenize) == (0.0, 1, 1, False)


def test_letter_fast_path_sends_one_request_per_question(tiny):
    path, _ = tiny
    backend = _fake_backend(path, letter_fast_path=True, letter_logprobs=100)
    calls = []
    generate = backend.engine.llm.generate
    backend.engine.llm.generate = lambda prompts, params, **kw: (
        calls.append(len(prompts)) or generate(prompts, params, **kw))
    backend.loglikelihoods(LETTER_SAMPLES)
    assert calls == [len(LETTER_SAMPLES)]


def test_fake_engine_truncates_like_hf_backend(tiny):
    path, _ = tiny
    from disco_ray.backends.hf import HFBackend
    reference = HFBackend(ModelSpec("ref", "hf", str(path), device="cpu",
                                    options={"max_length": 15}))
    samples = load_task(FIXTURE).samples + LETTER_SAMPLES
    got = _fake_backend(path, max_model_len=17, letter_fast_path=True,
                        letter_logprobs=100).loglikelihoods(samples)
    for g, w in zip(got, reference.loglikelihoods(samples)):
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=0)


def test_missing_vllm_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match=r"disco-ray\[vllm\] on a GPU image"):
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


@pytest.mark.skipif(not _cuda_available(), reason="vllm needs CUDA")
@pytest.mark.skipif(not _vllm_available(), reason="vllm not importable (GPU-only; see README)")
def test_real_engine_matches_hf_backend(tmp_path):
    from disco_ray.backends.base import load_backend
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
    seen = {}

    class StandInLLM:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            self.llm_engine = SimpleNamespace(model_config=SimpleNamespace(max_model_len=2048))

    vllm = SimpleNamespace(LLM=StandInLLM, SamplingParams=object)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.inputs", SimpleNamespace(TokensPrompt=dict))
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
