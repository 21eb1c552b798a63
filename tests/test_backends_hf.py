"""The `hf` backend against a direct torch computation on a tiny GPT-2 built in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from disco_ray.backends.base import ModelSpec  # noqa: E402
from disco_ray.backends.loading import load_backend  # noqa: E402
from disco_ray.backends.hf import HFBackend, plan_rows  # noqa: E402
from disco_ray.backends.tiny import build_tiny_gpt2  # noqa: E402
from disco_ray.tasks import load_task  # noqa: E402
from disco_ray.tasks.base import MCSample, Task  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "tasks" / "tiny_mc.jsonl"

EXTRA_SAMPLES = (
    MCSample("wino", "The trophy did not fit in the suitcase because _ was too big.",
             (" was too big.",), 0,
             choice_contexts=("The trophy did not fit in the suitcase because the trophy",
                              "The trophy did not fit in the suitcase because the suitcase")),
    MCSample("trailing-space", "Fill in: the sky is ", ("blue", "green", "a deep violet"), 0),
    MCSample("empty-context", "", ("Hello world", "Goodbye"), 1),
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny") / "gpt2", seed=3)


@pytest.fixture(scope="module")
def samples() -> tuple[MCSample, ...]:
    return load_task(FIXTURE).samples + EXTRA_SAMPLES


@pytest.fixture(scope="module")
def reference(model_dir, samples):
    return _direct(model_dir, samples)


def _backend(model_dir: Path, device: str = "cpu", **options) -> HFBackend:
    return load_backend(ModelSpec("tiny", "hf", str(model_dir), device=device, options=options))


def _direct(model_dir: Path, samples, max_length: int = 10_000):
    """Reference: one unpadded forward pass per option, lm-eval's encoding rules."""
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ll, greedy = [], []
    for sample in samples:
        values, flags = [], []
        for ctx, cont in sample.requests():
            spaces = len(ctx) - len(ctx.rstrip())
            ctx, cont = ctx[:len(ctx) - spaces], ctx[len(ctx) - spaces:] + cont
            if ctx:
                ctx_ids = tok(ctx, add_special_tokens=False).input_ids
                cont_ids = tok(ctx + cont, add_special_tokens=False).input_ids[len(ctx_ids):]
            else:
                ctx_ids = [tok.bos_token_id]
                cont_ids = tok(cont, add_special_tokens=False).input_ids
            full = (ctx_ids + cont_ids)[-(max_length + 1):]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([full[:-1]])).logits[0], -1)
            rows = logp[len(full) - 1 - len(cont_ids):]
            values.append(float(rows[torch.arange(len(cont_ids)), torch.tensor(cont_ids)].sum()))
            flags.append(bool((rows.argmax(-1) == torch.tensor(cont_ids)).all()))
        ll.append(np.array(values))
        greedy.append(np.array(flags))
    return ll, greedy


@pytest.mark.parametrize("batch_size", [1, 3])
def test_loglikelihoods_match_direct_computation(model_dir, samples, reference, batch_size):
    backend = _backend(model_dir, batch_size=batch_size)
    got, got_greedy = backend.loglikelihoods_and_greedy(samples)
    want, want_greedy = reference
    assert [g.shape for g in got] == [(s.n_options,) for s in samples]
    assert all(g.dtype == np.float64 for g in got)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=0)
    for g, w in zip(got_greedy, want_greedy):
        np.testing.assert_array_equal(g, w)
    assert all(np.array_equal(a, b) for a, b in zip(backend.loglikelihoods(samples), got))


def test_left_truncation_matches_direct_computation(model_dir, samples):
    got = _backend(model_dir, max_length=16, batch_size=4).loglikelihoods(samples)
    want, _ = _direct(model_dir, samples, max_length=16)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=0)


def test_acc_norm_divides_by_continuation_length(model_dir, samples):
    ll = _backend(model_dir).loglikelihoods(samples)
    scores = Task("t", tuple(samples), "acc_norm").choice_scores(ll)
    for sample, score, raw in zip(samples, scores, ll):
        # lm-eval divides by len(choice); the continuation adds the delimiter (a space)
        lengths = np.array([len(cont.removeprefix(" ")) for _, cont in sample.requests()])
        np.testing.assert_allclose(score, raw / lengths)


def test_continuation_longer_than_max_length_is_a_clear_error(model_dir):
    sample = MCSample("long", "Q:", (" a long answer",), 0)
    with pytest.raises(ValueError, match="max_length"):
        _backend(model_dir, max_length=4).loglikelihoods([sample])


@pytest.mark.parametrize("trust", [None, True])
def test_trust_remote_code_is_passed_through(model_dir, monkeypatch, trust):
    seen = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        original = cls.from_pretrained

        def record(*args, _original=original, **kwargs):
            seen.append(kwargs["trust_remote_code"])
            return _original(*args, **kwargs)
        monkeypatch.setattr(cls, "from_pretrained", record)
    extra = {} if trust is None else {"trust_remote_code": trust}
    HFBackend(ModelSpec("tiny", "hf", str(model_dir), device="cpu", **extra))
    assert seen == [bool(trust)] * 2


def test_unknown_dtype_is_rejected(model_dir):
    with pytest.raises(ValueError, match="dtype"):
        _backend(model_dir, dtype="float8")


def test_requests_are_tokenised_in_batches_each_text_once(model_dir, samples, monkeypatch):
    from disco_ray.backends import encoding

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    encode = encoding.tokenizer_encoder(tokenizer)
    calls: list[list[str]] = []

    def counting(texts):
        calls.append(list(texts))
        return encode(texts)
    whole = encoding.sample_token_pairs(counting, samples, encoding.prefix_token(tokenizer))
    assert len(calls) == 1 and len(calls[0]) == len(set(calls[0]))
    monkeypatch.setattr(encoding, "CHUNK_SAMPLES", 2)
    calls.clear()
    chunked = encoding.sample_token_pairs(counting, samples, encoding.prefix_token(tokenizer))
    assert len(calls) == -(-len(samples) // 2) and chunked == whole
    # one text at a time, as lm-eval does, gives the same pairs
    one_by_one = encoding.sample_token_pairs(lambda texts: [encode([t])[0] for t in texts],
                                             samples, encoding.prefix_token(tokenizer))
    assert one_by_one == whole


def test_plan_rows_shares_identical_and_prefix_inputs():
    pairs = [([1, 2, 3], [7]), ([1, 2, 3], [8]),          # same input: ctx only
             ([1, 2, 3], [4, 5]),                         # input 1 2 3 4 hosts the above
             ([9], [1, 2])]
    rows, slots = plan_rows(pairs, max_length=100)
    assert sorted(rows) == [(1, 2, 3, 4), (9, 1)]
    host = rows.index((1, 2, 3, 4))
    assert [(s.row, s.start, s.tokens) for s in slots[:3]] == [
        (host, 2, (7,)), (host, 2, (8,)), (host, 2, (4, 5))]
    assert (slots[3].start, slots[3].tokens) == (0, (1, 2))


def test_tiny_models_are_deterministic_and_differ_by_seed(tmp_path):
    def weights(seed, name):
        path = build_tiny_gpt2(tmp_path / name, seed=seed)
        model = transformers.AutoModelForCausalLM.from_pretrained(path)
        return model.transformer.wte.weight.detach().numpy()
    a, a_again, b = weights(1, "a"), weights(1, "a2"), weights(2, "b")
    np.testing.assert_array_equal(a, a_again)
    assert not np.allclose(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("batch_size", [1, 4])
def test_cuda_float32_matches_direct_cpu_computation(model_dir, samples, reference, batch_size):
    backend = _backend(model_dir, "cuda", batch_size=batch_size, dtype="float32")
    assert next(backend.model.parameters()).device.type == "cuda"
    got, got_greedy = backend.loglikelihoods_and_greedy(samples)
    want, want_greedy = reference
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-3, rtol=0)
    assert np.mean(np.concatenate(got_greedy) == np.concatenate(want_greedy)) > 0.98
    backend.close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bfloat16_keeps_the_float32_choice(model_dir, samples, reference):
    """bf16 rounds the log-likelihoods (about 3 significant digits) but keeps which option
    wins on nearly every question: the choice is what DISCO's signatures read."""
    backend = _backend(model_dir, "cuda", dtype="bfloat16")
    assert next(backend.model.parameters()).dtype == torch.bfloat16
    got = backend.loglikelihoods(samples)
    want, _ = reference
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0.03, atol=0.1)
    multi = [(g, w) for g, w in zip(got, want) if len(w) > 1]
    same_choice = np.mean([np.argmax(g) == np.argmax(w) for g, w in multi])
    assert same_choice >= 0.9
    backend.close()


def test_a_checkpoint_on_object_storage_is_staged_loaded_and_removed(
        model_dir, samples, reference, tmp_path):
    """A `file://` URI takes the path an `s3://` one does (pyarrow.fs): copied under the staging
    root, loaded, deleted; the scores are those of the local checkpoint."""
    stage = tmp_path / "stage"
    backend = _backend(f"file://{model_dir}", stage_dir=str(stage))
    got = backend.loglikelihoods(samples)
    for value, expected in zip(got, reference[0], strict=True):
        np.testing.assert_allclose(value, expected, atol=1e-4)
    assert list(stage.iterdir()) == []   # the copy is gone once the model is loaded
