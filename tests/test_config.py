"""The YAML run config: shipped configs parse, bad configs fail with file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from disco_ray.backends.base import ModelSpec
from disco_ray.backends.base import check_spec
from disco_ray.config import (ConfigError, ModelsConfig, config_from_dict, list_paths,
                              load_config, resolve_models)
from disco_ray.pipeline import load_run_task, resolve_run_models

CONFIGS = Path(__file__).parents[1] / "configs"
MINIMAL = {"name": "t", "task": {"name": "mmlu"},
           "references": {"models": [{"name": "a", "backend": "hf", "path": "x/a"}]}}


def with_changes(**changes) -> dict:
    return {**MINIMAL, **changes}


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, source="run.yaml")
    return str(info.value)


def test_smoke_config_parses():
    config = load_config(CONFIGS / "smoke_llm_cpu.yaml")
    assert config.task.path == "configs/data/smoke_task.jsonl"
    assert config.references.factory == "disco_ray.zoo.tiny_llm:references"
    assert config.targets.compute_true_score is True
    assert config.resources.gpus_per_model == 0 and config.condense.k == 20
    assert config.source.endswith("smoke_llm_cpu.yaml")


def test_gpu_smoke_config_puts_four_models_on_one_gpu():
    config = load_config(CONFIGS / "smoke_llm_gpu.yaml")
    assert config.references.factory_options == {"count": 6, "device": "cuda"}
    assert config.targets.factory_options == {"count": 2, "device": "cuda"}
    assert config.resources.gpus_per_model == 0.25 and config.ray.num_cpus is None


def test_mmlu_config_parses_without_touching_s3():
    config = load_config(CONFIGS / "mmlu_vllm.yaml")
    assert config.task.name == "mmlu" and config.targets.glob.startswith("s3://")
    assert len(config.references.models) == 10
    assert config.resources.gpus_per_model == "auto" and config.ray.address == "auto"
    # every option it gives is one the vllm backend reads (a misspelt one would be refused)
    target = ModelSpec("step-1", config.targets.defaults["backend"], "s3://b/step-1",
                       options=config.targets.defaults["options"])
    for spec in [*resolve_models(config.references, Path("."), "mmlu_vllm.yaml", "references"),
                 target]:
        check_spec(spec)


def test_defaults_merge_into_entries_with_options_merged_key_by_key(tmp_path):
    section = ModelsConfig(models=({"name": "a", "path": "org/a", "options": {"dtype": "x"}},
                                   {"path": "org/b", "tensor_parallel_size": 2}),
                           defaults={"backend": "vllm", "options": {"max_model_len": 4096}})
    a, b = resolve_models(section, tmp_path, "run.yaml", "references")
    assert a == ModelSpec("a", "vllm", "org/a", options={"max_model_len": 4096, "dtype": "x"})
    assert b.name == "b" and b.tensor_parallel_size == 2  # name defaults to the basename


@pytest.mark.parametrize("data, expected", [
    (with_changes(condense={"kk": 3}), "field 'condense.kk': unknown key. Fix: remove it or "
                                       "did you mean 'k'?"),
    (with_changes(extra=1), "field 'extra': unknown key"),
    (with_changes(condense={"k": "ten"}), "field 'condense.k': expected an integer, got 'ten'"),
    (with_changes(condense={"k": 0}), "field 'condense.k': is 0, below the minimum 1"),
    (with_changes(condense={"method": "magic"}), "field 'condense.method': unknown method"),
    (with_changes(task={"name": "mmlu", "path": "a.jsonl"}), "field 'task': has 2 of"),
    (with_changes(task={"path": "a.jsonl", "options": {"limt": 3}}),
     "field 'task.options.limt': unknown task option"),
    (with_changes(references={}), "field 'references': lists no models"),
    (with_changes(references={"factory": "nocolon"}), "is not an import path"),
    (with_changes(resources={"gpus_per_model": "many"}),
     "field 'resources.gpus_per_model': expected a number or 'auto'"),
    (with_changes(report="yes"), "field 'report': expected true/false"),
    ({"task": {"name": "mmlu"}, "references": MINIMAL["references"]}, "field 'name': is required"),
    (with_changes(references={"models": [{"name": "a", "backend": "hf", "path": "p", "tp": 2}]}),
     "field 'references.models[0].tp': unknown model field"),
    (with_changes(references={"models": [{"name": "a", "path": "p"}]}),
     "field 'references.models[0].backend': is missing"),
    (with_changes(targets={"models": [{"name": "a", "backend": "hf", "path": "p",
                                       "tensor_parallel_size": 0}]}),
     "field 'targets.models[0].tensor_parallel_size': is 0, below the minimum 1"),
    (with_changes(references={"glob": "x/*", "defaults": {"backend": "hf", "devices": "cpu"}}),
     "field 'references.defaults.devices': unknown model field"),
    (with_changes(condense={"seed": -1}), "field 'condense.seed': is -1, below the minimum 0"),
    (with_changes(condense={"designs": ["top-jsd", "stratified-x"]}),
     "field 'condense.designs[1]': unknown anchor design stratified-x. Fix: use random, "),
    (with_changes(ray={"num_cpus": -2}), "field 'ray.num_cpus': is -2, below the minimum 1"),
    (with_changes(name=""), "field 'name': '' is not a plain name"),
    (with_changes(name="a/b"), "field 'name': 'a/b' is not a plain name"),
    (with_changes(name=".."), "field 'name': '..' is not a plain name"),
    (with_changes(task={"path": "a.jsonl", "options": {"limit": "10"}}),
     "field 'task.options.limit': expected an integer, got '10'"),
    (with_changes(task={"path": "a.jsonl", "options": {"metric": "f1"}}),
     "field 'task.options.metric': expected 'acc' or 'acc_norm', got 'f1'"),
    (with_changes(task={"path": "a.jsonl", "options": {"limit": 0}}),
     "field 'task.options.limit': is 0, below the minimum 1"),
    (with_changes(references={"models": ["gpt2"]}),
     "field 'references.models[0]': expected a mapping, got 'gpt2'"),
    (with_changes(references={"models": [{"name": "a", "backend": "hf", "path": "p",
                                          "options": [1, 2]}]}),
     "field 'references.models[0].options': expected a mapping, got [1, 2]"),
])
def test_bad_configs_name_the_field_and_the_fix(data, expected):
    message = error_of(data)
    assert message.startswith("run.yaml: ") and expected in message and "Fix:" in message


def test_condense_designs_reach_the_pipelines_settings(tmp_path):
    """condense.designs replaces the method's anchor designs (a guiding subset, stratified)."""
    from disco_ray.design import AnchorDesign
    from disco_ray.methods import method_settings
    from disco_ray.stages.condense import run_settings

    config = config_from_dict(with_changes(condense={"method": "jsd_rf", "k": 7, "designs": [
        "stratified-jsd@12", "cluster"]}), "run.yaml")
    assert run_settings(config) == method_settings("jsd_rf", 7, 0, [
        AnchorDesign("stratified", "jsd", 12), AnchorDesign("cluster", "centroid")])
    assert run_settings(config_from_dict(with_changes())).designs == method_settings(
        "disco", 1).designs


def test_null_task_options_mean_the_defaults():
    options = {"limit": None, "split": None, "metric": None}
    config = config_from_dict(with_changes(task={"path": "a.jsonl", "options": options}))
    assert config.task.options == options


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found. Fix"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    twice = tmp_path / "twice.yaml"   # PyYAML alone keeps the second silently
    twice.write_text(yaml.safe_dump(MINIMAL) + "references: {glob: 'x/*'}\n")
    with pytest.raises(ConfigError, match="twice.yaml: not valid YAML \\(key 'references' is "
                                          "given twice"):
        load_config(twice)
    merged = tmp_path / "merged.yaml"   # `<<:` merges an anchor; an entry may override it
    merged.write_text("name: t\ntask: {name: mmlu}\nreferences:\n  defaults: &d {backend: hf}\n"
                      "  models:\n    - {<<: *d, path: a}\n"
                      "    - {<<: *d, backend: vllm, path: b}\n")
    models = load_config(merged).references.models
    assert [(m["backend"], m["path"]) for m in models] == [("hf", "a"), ("vllm", "b")]


def test_globs_local_and_uri(tmp_path):
    for name in ("step-2", "step-10", "other"):
        (tmp_path / name).mkdir()
    assert [Path(p).name for p in list_paths(str(tmp_path / "step-*"))] == ["step-10", "step-2"]
    uri = list_paths(f"file://{tmp_path}/step-*")  # the pyarrow.fs path that s3:// takes
    assert uri == [f"file://{tmp_path}/step-10", f"file://{tmp_path}/step-2"]
    section = ModelsConfig(glob=str(tmp_path / "step-*"), defaults={"backend": "hf"})
    specs = resolve_models(section, tmp_path, "run.yaml", "targets")
    assert [s.name for s in specs] == ["step-10", "step-2"]
    with pytest.raises(ConfigError, match="'targets.glob': .* matches nothing"):
        resolve_models(ModelsConfig(glob=str(tmp_path / "none-*")), tmp_path, "run.yaml",
                       "targets")


def make_entries(output_dir: Path, count: int) -> list[dict]:
    """A factory for the test below: gets `output_dir` injected."""
    return [{"name": f"m{i}", "backend": "hf", "path": str(output_dir / f"m{i}")}
            for i in range(count)]


def test_factories_and_unique_names(tmp_path):
    factory = {"factory": "test_config:make_entries", "factory_options": {"count": 2}}
    config = config_from_dict(with_changes(references=factory, targets=factory))
    with pytest.raises(ConfigError, match="model names appear more than once: \\['m0', 'm1'\\]"):
        resolve_run_models(config, tmp_path)
    config = config_from_dict(with_changes(references=factory))
    references, targets = resolve_run_models(config, tmp_path)
    assert [s.path for s in references] == [str(tmp_path / "m0"), str(tmp_path / "m1")]
    bad = config_from_dict(with_changes(references={**factory, "factory_options": {"n": 2}}))
    with pytest.raises(ConfigError, match="'references.factory': .* rejected its options"):
        resolve_run_models(bad, tmp_path)
    missing = config_from_dict(with_changes(task={"factory": "test_config:nothing"}))
    with pytest.raises(ConfigError, match="'task.factory': cannot import"):
        load_run_task(missing, tmp_path)


def test_task_from_file_with_options(tmp_path):
    path = tmp_path / "run.yaml"
    five = {"path": str(CONFIGS / "data" / "smoke_task.jsonl"), "options": {"limit": 5}}
    path.write_text(yaml.safe_dump(with_changes(task=five, condense={"k": 5})))
    task = load_run_task(load_config(path), tmp_path)
    assert len(task.samples) == 5 and task.name == "smoke_task"
    # more anchors than samples: refused when the task loads, before any model runs
    config = config_from_dict(with_changes(task=five, condense={"k": 6}), "run.yaml")
    with pytest.raises(ConfigError, match="run.yaml: field 'condense.k': 6 anchors requested but "
                                          "task 'smoke_task' has 5 samples. Fix: choose k <= 5"):
        load_run_task(config, tmp_path)


def test_a_missing_task_file_names_the_field_and_the_directory_it_was_read_from(tmp_path,
                                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = config_from_dict(with_changes(task={"path": "configs/data/smoke_task.jsonl"}),
                              "run.yaml")
    with pytest.raises(ConfigError, match=f"run.yaml: field 'task.path': configs/data/smoke_task"
                                          f".jsonl not found .*current directory, {tmp_path}\\)"
                                          ". Fix: run from the directory"):
        load_run_task(config, tmp_path)
