"""The Ray layer and the pipeline on one local Ray (2 CPUs, 4 fake GPUs; see conftest.py).

Test backends live in this module; `register_pickle_by_value` ships them to Ray workers, and
`run(..., loader=load)` makes the model actors use them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from disco_ray.backends.base import ModelSpec  # noqa: E402
from disco_ray.backends.loading import load_backend  # noqa: E402
from disco_ray.config import ResourcesConfig, config_from_dict  # noqa: E402
from disco_ray.distributed.actors import actor_options  # noqa: E402
from disco_ray.distributed.cache import OutputCache, cache_key, read_parts  # noqa: E402
from disco_ray.distributed.scheduler import evaluate_models  # noqa: E402
from disco_ray.io import read_outputs, write_outputs  # noqa: E402
from disco_ray.pipeline import (PipelineError, _check_output_dir, choice_count,  # noqa: E402
                                model_outputs, run)
from disco_ray.tasks import load_task  # noqa: E402
from disco_ray.zoo.tiny_llm import build_once  # noqa: E402

from helpers import synthetic_population  # noqa: E402

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

SMOKE_TASK = Path(__file__).parents[1] / "configs" / "data" / "smoke_task.jsonl"
pytestmark = pytest.mark.ray


class FakeBackend:
    """Deterministic log-likelihoods: the gold choice gets a boost that grows with the model's
    seed-derived ability. Options: `record` (directory: one JSON line per load / call / close,
    with GPU ids and times), `sleep` (seconds per call), `fail` (raise on every call),
    `crash_once` (marker file: the process dies on the first call, while the marker does not
    exist), `close_sleep` (seconds `close` takes)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec, self.options = spec, spec.options
        self.ability = (zlib.crc32(spec.name.encode()) % 1000) / 250.0
        self._record("load")

    def loglikelihoods(self, samples):
        marker = self.options.get("crash_once")
        if marker and not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)
        if self.options.get("fail"):
            raise RuntimeError(f"{self.spec.name} always fails")
        time.sleep(self.options.get("sleep", 0))
        self._record("call")
        return [self._values(s) for s in samples]

    def _values(self, sample) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(f"{self.spec.name}/{sample.sample_id}".encode()))
        values = rng.normal(size=sample.n_options)
        values[sample.gold] += self.ability
        return values

    def _record(self, event: str) -> None:
        if "record" in self.options:
            line = {"model": self.spec.name, "event": event, "time": time.time(),
                    "gpus": [str(g) for g in ray.get_gpu_ids()]}
            with open(Path(self.options["record"]) / f"{self.spec.name}.jsonl", "a") as f:
                f.write(json.dumps(line) + "\n")

    def close(self) -> None:
        time.sleep(self.options.get("close_sleep", 0))
        self._record("close")


def load(spec: ModelSpec):
    """The loader handed to the actors: `fake` here, everything else from the registry."""
    return FakeBackend(spec) if spec.backend == "fake" else load_backend(spec)


def records(directory: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(directory.glob("*.jsonl"))
            for line in f.read_text().splitlines()]


def loads(directory: Path) -> Counter:
    """How many times each model was loaded."""
    return Counter(r["model"] for r in records(directory) if r["event"] == "load")


def fake_config(tmp_path: Path, n_refs: int = 6, failing: tuple[str, ...] = (),
                **overrides) -> dict:
    """A run config over the smoke task with `fake` models recording into tmp_path/record."""
    (tmp_path / "record").mkdir(exist_ok=True)
    defaults = {"backend": "fake", "path": "-", "options": {"record": str(tmp_path / "record")}}
    refs = [{"name": f"ref{i}"} for i in range(n_refs)]
    refs += [{"name": name, "options": {"fail": True}} for name in failing]
    config = {"name": "fake", "output": str(tmp_path / "out"),
              "task": {"path": str(SMOKE_TASK), "options": {"limit": 40}},
              "references": {"models": refs, "defaults": defaults},
              "targets": {"models": [{"name": "target0"}, {"name": "target1"}],
                          "defaults": defaults},
              "condense": {"k": 10, "method": "disco"},
              "resources": {"cpus_per_model": 0.5, "batch_size": 16, "max_retries": 1},
              "report": False}
    config.update(overrides)
    return config


# -- pipeline ---------------------------------------------------------------------------------
def test_replay_pipeline_matches_in_memory_condense(ray_session, tmp_path):
    from disco_ray.search import condense
    from disco_ray.methods import method_settings

    population = synthetic_population(n_models=10, n_samples=60, seed=1)
    write_outputs(population, tmp_path / "population.parquet")
    with open(tmp_path / "task.jsonl", "w") as f:
        for sid, gold, group in zip(population.sample_ids, population.gold, population.groups):
            f.write(json.dumps({"id": sid, "context": f"Q{sid}", "choices": list("ABCD"),
                                "gold": int(gold), "group": group}) + "\n")
    entry = {"backend": "replay", "path": str(tmp_path / "population.parquet")}
    names = population.model_ids.tolist()
    config = config_from_dict({
        "name": "replay", "task": {"path": str(tmp_path / "task.jsonl")},
        "references": {"models": [{"name": n} for n in names[:8]], "defaults": entry},
        "targets": {"models": [{"name": n} for n in names[8:]], "defaults": entry},
        "condense": {"k": 12, "method": "pds_rf"},
        "resources": {"cpus_per_model": 0.25, "batch_size": 25}, "report": False})
    result = run(config, output=tmp_path / "out", quiet=True)

    expected = condense(population.take_models(range(8)), method_settings("pds_rf", 12))
    assert result.benchmark.anchor_ids == expected.anchor_ids
    assert [p["model_id"] for p in result.predictions] == names[8:]
    stored = read_outputs(tmp_path / "out" / "outputs" / "references")
    np.testing.assert_allclose(stored.probs, population.probs[:8], atol=1e-5)
    target = read_outputs(tmp_path / "out" / "outputs" / "targets" / f"{names[8]}.parquet")
    assert target.sample_ids.tolist() == result.benchmark.anchor_ids  # anchors only
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["failed"] == {} and info["cost_share"] == pytest.approx(12 / 60)


def tiny_config(tmp_path: Path, stage_dir: Path) -> dict:
    """Tiny GPT-2 references built by the zoo's factory; the target is a checkpoint in a
    `file://` "bucket" (the code path of `s3://`: listed, staged to `stage_dir`, loaded)."""
    build_once(tmp_path / "bucket" / "tiny-target-100", seed=100, n_layer=1, n_embd=32)
    return {
        "name": "tiny", "task": {"path": str(SMOKE_TASK), "options": {"limit": 40}},
        "references": {"factory": "disco_ray.zoo.tiny_llm:references",
                       "factory_options": {"count": 3}},
        "targets": {"glob": f"file://{tmp_path}/bucket/tiny-target-*",
                    "defaults": {"backend": "hf", "device": "cpu",
                                 "options": {"stage_dir": str(stage_dir)}},
                    "compute_true_score": True},
        "condense": {"k": 8, "method": "random_direct"},
        "resources": {"cpus_per_model": 1, "batch_size": 20}, "report": False}


def test_tiny_gpt2_hf_pipeline_then_cached_rerun(ray_session, tmp_path):
    config = config_from_dict(tiny_config(tmp_path, tmp_path / "stage"))
    out = tmp_path / "out"
    first = run(config, output=out, quiet=True)
    (prediction,) = first.predictions
    assert prediction["model_id"] == "tiny-target-100"
    assert list((tmp_path / "stage").iterdir()) == []   # staged, loaded, removed
    assert 0 <= prediction["true_score"] <= 1 and 0 <= prediction["score"] <= 1
    assert (out / "condensed" / "condensed.json").is_file()
    parts = sorted((out / "outputs").rglob("*.parquet"))
    assert len(parts) == 4
    mtimes = [p.stat().st_mtime_ns for p in parts]

    # staged elsewhere: the same outputs, so nothing is recomputed
    second = run(config_from_dict(tiny_config(tmp_path, tmp_path / "elsewhere")), output=out,
                 quiet=True)
    assert [p.stat().st_mtime_ns for p in parts] == mtimes
    info = json.loads((out / "run.json").read_text())
    assert all(model["cached"] for model in info["models"].values())
    assert second.predictions == first.predictions


def test_failing_model_is_reported_and_rerun_recomputes_nothing_else(ray_session, tmp_path):
    config = config_from_dict(fake_config(tmp_path, failing=("broken",)))
    result = run(config, quiet=True, loader=load)
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert set(info["failed"]) == {"broken"}
    assert "RuntimeError: broken always fails" in info["failed"]["broken"]
    assert [p["model_id"] for p in result.predictions] == ["target0", "target1"]
    assert info["n_references"] == 6
    first = loads(tmp_path / "record")
    assert first == Counter([f"ref{i}" for i in range(6)] + ["broken", "target0", "target1"])

    run(config, quiet=True, loader=load)
    assert loads(tmp_path / "record") - first == Counter(["broken"])  # only it is tried again


# -- scheduler ----------------------------------------------------------------------------------
def test_actor_that_dies_once_gives_complete_identical_results(ray_session, tmp_path):
    samples = load_task(SMOKE_TASK, limit=30).samples
    spec = ModelSpec("crashy", "fake", "-", options={"crash_once": str(tmp_path / "marker")})
    results = {}
    runs = evaluate_models([spec], samples, ResourcesConfig(batch_size=7, max_retries=2),
                           lambda s, lls: results.update({s.name: lls}), loader=load,
                           progress=False)
    assert (tmp_path / "marker").exists() and runs[0].error is None
    # what run.json reports; the processes are those that answered: the first may die before
    # answering anything (its calls are then retried on the second)
    assert runs[0].restarts == 1 and len(runs[0].processes) in (1, 2)
    expected = FakeBackend(ModelSpec("crashy", "fake", "-")).loglikelihoods(samples)
    assert len(results["crashy"]) == len(samples)
    for got, want in zip(results["crashy"], expected):
        np.testing.assert_array_equal(got, want)


def test_finished_models_close_their_backend_before_the_kill(ray_session, tmp_path, monkeypatch,
                                                             caplog):
    """A failed model's actor is killed at once; a close that outlasts `CLOSE_TIMEOUT_S` too."""
    import disco_ray.distributed.scheduler as scheduler

    monkeypatch.setattr(scheduler, "CLOSE_TIMEOUT_S", 3.0)
    samples = load_task(SMOKE_TASK, limit=30).samples
    options = {"record": str(tmp_path)}
    specs = [ModelSpec(name, "fake", "-", options={**options, **extra}) for name, extra in
             [("m0", {}), ("m1", {}), ("broken", {"fail": True}), ("slow", {"close_sleep": 60})]]
    began = time.perf_counter()
    runs = evaluate_models(specs, samples, ResourcesConfig(batch_size=7, cpus_per_model=0.5),
                           lambda s, lls: None, loader=load, progress=False)
    assert time.perf_counter() - began < 40
    assert [r.error is None for r in runs] == [True, True, False, True]
    events = {spec.name: [r["event"] for r in records(tmp_path) if r["model"] == spec.name]
              for spec in specs}
    calls = ["load"] + ["call"] * 5   # 5 batches of 7 samples
    assert events == {"m0": calls + ["close"], "m1": calls + ["close"], "broken": ["load"],
                      "slow": calls}
    assert "slow: its backend did not close (GetTimeoutError" in caplog.text


def test_tensor_parallel_actors_share_four_gpus_two_at_a_time(ray_session, tmp_path):
    samples = load_task(SMOKE_TASK, limit=4).samples
    specs = [ModelSpec(f"tp{i}", "fake", "-", tensor_parallel_size=2, device="cuda",
                       options={"record": str(tmp_path), "sleep": 3.0}) for i in range(3)]
    specs.append(ModelSpec("too-big", "fake", "-", tensor_parallel_size=8, device="cuda"))
    runs = evaluate_models(specs, samples, ResourcesConfig(cpus_per_model=0.5),
                           lambda s, lls: None, loader=load, progress=False)
    by_name = {r.name: r for r in runs}
    assert all(len(by_name[f"tp{i}"].gpu_ids) == 2 for i in range(3))
    assert "needs 0.5 CPU(s) and 8 GPU(s)" in by_name["too-big"].error
    spans = {}
    for r in records(tmp_path):
        start, end = spans.get(r["model"], (r["time"], r["time"]))
        spans[r["model"]] = (min(start, r["time"]), max(end, r["time"]))
        if r["event"] == "call":
            assert r["gpus"] == by_name[r["model"]].gpu_ids
    starts = sorted(spans.items(), key=lambda item: item[1][0])
    (first, (s1, e1)), (second, (s2, e2)), (third, (s3, _)) = starts
    assert s2 < e1 and s1 < e2, "the first two tp=2 models run at the same time"
    assert set(by_name[first].gpu_ids).isdisjoint(by_name[second].gpu_ids)
    assert s3 >= min(e1, e2), "the third waits for GPUs to be freed"


def test_actor_options_follow_the_backend():
    resources = ResourcesConfig(cpus_per_model=2, max_retries=3)
    vllm = actor_options(ModelSpec("m", "vllm", "p", tensor_parallel_size=4), resources, False)
    vllm_cpu = ModelSpec("m", "vllm", "p", device="cpu")
    assert actor_options(vllm_cpu, resources, True)["num_gpus"] == 0.0
    hf = ModelSpec("m", "hf", "p")
    assert vllm == {"num_cpus": 2, "num_gpus": 4.0, "max_restarts": 3, "max_task_retries": -1}
    no_retries = ResourcesConfig(max_retries=0)
    assert actor_options(hf, no_retries, False)["max_task_retries"] == 0
    assert actor_options(hf, resources, True)["num_gpus"] == 1.0
    assert actor_options(hf, resources, False)["num_gpus"] == 0.0
    replay = ModelSpec("m", "replay", "p")
    assert actor_options(replay, resources, True)["num_gpus"] == 0.0
    fixed = ResourcesConfig(gpus_per_model=0.5)
    assert actor_options(hf, fixed, False)["num_gpus"] == 0.5


def test_outputs_are_padded_softmaxes_cached_under_their_key(tmp_path):
    task = load_task(SMOKE_TASK)  # 4-choice questions and 2-choice true/false statements
    spec = ModelSpec("org/model", "fake", "-")
    outputs = model_outputs(task, spec.name, FakeBackend(spec).loglikelihoods(task.samples),
                            choice_count(task))
    assert outputs.probs.shape == (1, 100, 4)
    two = [i for i, s in enumerate(task.samples) if s.n_options == 2]
    assert two and np.all(outputs.probs[0, two, 2:] == 0)
    np.testing.assert_allclose(outputs.probs.sum(axis=2), 1, atol=1e-6)
    cache = OutputCache(tmp_path)
    key = cache_key(spec, task, 4)
    assert cache.write(outputs, key) == tmp_path / "org_model.parquet"
    assert cache.has(spec.name, key)
    assert not cache.has(spec.name, cache_key(spec, task.subset(task.sample_ids[:5]), 4))
    np.testing.assert_array_equal(read_parts([cache.part(spec.name)]).probs, outputs.probs)


def test_the_cache_key_follows_the_checkpoint_not_the_throughput_settings(tmp_path):
    task = load_task(SMOKE_TASK, limit=5)
    checkpoint = tmp_path / "step-9"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"v1")
    spec = ModelSpec("step-9", "hf", str(checkpoint), options={"batch_size": 8, "dtype": "fp32"})
    key = cache_key(spec, task, 4)
    faster = dict(spec.options, batch_size=64, stage_dir="/nvme")
    assert cache_key(ModelSpec("step-9", "hf", str(checkpoint), options=faster), task, 4) == key
    other = dict(spec.options, dtype="bf16")   # changes the outputs
    assert cache_key(ModelSpec("step-9", "hf", str(checkpoint), options=other), task, 4) != key
    (checkpoint / "model.safetensors").write_bytes(b"v2 retrained")   # same path, new weights
    assert cache_key(spec, task, 4) != key
    # a Hugging Face id keeps the key it had before checkpoints were stamped
    hub = ModelSpec("llama", "vllm", "meta-llama/Llama-3.1-8B", options={"dtype": "bfloat16"})
    assert cache_key(hub, task, 4) == ("2da3980b0cb590e7f000bb23e9492a3a"
                                       "3a1191c26a87ac77747412521b76d8f0")   # as at d3c1664
    # acc_norm outputs cached before it divided by the length without the leading space get
    # a new key (recomputed, not mixed with new ones); acc keys are kept (above)
    norm = dataclasses.replace(task, metric="acc_norm")
    assert cache_key(hub, norm, 4) != ("7449fa7a57a400f3895aa589ab05f21e"
                                       "c12abc3cbb83735437c42bd89a636985")   # as at 13a6ef8


def test_names_that_share_a_cache_file_or_an_unknown_backend_stop_the_run_early(tmp_path):
    entries = [{"name": "org/ckpt"}, {"name": "org_ckpt"}]
    config = config_from_dict(fake_config(tmp_path, targets={
        "models": entries, "defaults": {"backend": "fake", "path": "-"}}), "run.yaml")
    with pytest.raises(ValueError, match="run.yaml: field 'targets': model names 'org/ckpt' "
                                         "and 'org_ckpt' share the cache file org_ckpt.parquet."
                                         " Fix: rename one"):
        run(config, quiet=True, loader=load)
    unknown = config_from_dict(fake_config(tmp_path), "run.yaml")   # backend 'fake'
    with pytest.raises(ValueError, match="run.yaml: model 'ref0': field 'backend': unknown "
                                         "backend 'fake'. Fix: use one of classifier, hf, "
                                         "replay, vllm"):
        run(unknown, quiet=True)   # without the test's loader, only the known backends load
    misspelt = {"backend": "hf", "path": "-", "options": {"dtpye": "float32"}}
    typo = config_from_dict(fake_config(tmp_path, references={
        "models": [{"name": "r"}], "defaults": misspelt}), "run.yaml")
    with pytest.raises(ValueError, match="run.yaml: model 'r': field 'options': backend 'hf' has "
                                         "no option 'dtpye' \\(did you mean 'dtype'\\?\\)"):
        run(typo, quiet=True)
    assert not (tmp_path / "out" / "outputs").exists()   # no model ran


def test_full_task_outputs_of_targets_serve_a_later_anchors_only_run(ray_session, tmp_path):
    """Switching compute_true_score off reruns no target: their cached full-task outputs hold
    the anchors, and predictions are the same."""
    quick = {"k": 10, "method": "random_direct"}
    with_truth = fake_config(tmp_path, condense=quick)
    with_truth["targets"] = {**with_truth["targets"], "compute_true_score": True}
    first = run(config_from_dict(with_truth), quiet=True, loader=load)
    before = loads(tmp_path / "record")
    second = run(config_from_dict(fake_config(tmp_path, condense=quick)), quiet=True, loader=load)
    assert loads(tmp_path / "record") == before   # nothing loaded again
    assert [p["score"] for p in second.predictions] == [p["score"] for p in first.predictions]
    assert all(p["true_score"] is None for p in second.predictions)
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["models"]["target0"] == {"phase": "full task", "n_samples": 40, "cached": True}


def test_an_output_folder_of_other_files_is_refused_before_any_work(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    config = config_from_dict(fake_config(tmp_path), "run.yaml")
    with pytest.raises(ValueError, match="run.yaml: field 'output': .*out is not empty and holds "
                                         "no earlier run \\(run.json, outputs, condensed, "
                                         "models\\)"):
        run(config, quiet=True, loader=load)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notes.txt"]
    (tmp_path / "out" / "notes.txt").unlink()
    (tmp_path / "out" / "models").mkdir()   # all a smoke run leaves if stopped while building
    _check_output_dir("run.yaml", tmp_path / "out")   # a rerun may go on


def test_when_every_reference_fails_the_error_is_short_and_names_a_few(ray_session, tmp_path):
    config = config_from_dict(fake_config(tmp_path, n_refs=0, failing=("b1", "b2", "b3", "b4")))
    with pytest.raises(PipelineError) as error:
        run(config, quiet=True, loader=load)
    message = str(error.value)
    assert message.startswith("every reference model failed (4), e.g. b1: RuntimeError: b1 "
                              "always fails; b2: ")
    assert "b4" not in message and len(message) < 800


def test_a_rerun_reuses_the_benchmark_condensed_from_the_same_references(ray_session, tmp_path):
    quick = {"k": 10, "method": "random_direct"}
    first = run(config_from_dict(fake_config(tmp_path, condense=quick)), quiet=True, loader=load)
    manifest = tmp_path / "out" / "condensed" / "condensed.json"
    written = manifest.stat().st_mtime_ns
    second = run(config_from_dict(fake_config(tmp_path, condense=quick)), quiet=True, loader=load)
    timings = json.loads((tmp_path / "out" / "run.json").read_text())["timings_s"]
    assert "condense" not in timings and "disagreement" not in timings
    assert manifest.stat().st_mtime_ns == written and second.predictions == first.predictions
    other = {"k": 12, "method": "random_direct"}   # other settings: condensed again
    third = run(config_from_dict(fake_config(tmp_path, condense=other)), quiet=True, loader=load)
    assert third.benchmark.k == 12 and manifest.stat().st_mtime_ns != written
