"""Pipeline stages that run models: the task, the model specs, and every model's outputs on
the full task or the anchors (Ray actors, cached per model)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.special import softmax

from disco_ray.backends.base import ModelSpec, check_spec
from disco_ray.condensed import CondensedBenchmark
from disco_ray.config import (ConfigError, RunConfig, call_factory, config_error,
                              resolve_models)
from disco_ray.distributed.cache import OutputCache, cache_key, part_name, samples_hash
from disco_ray.outputs import ModelOutputs, OutputsError
from disco_ray.stages.state import RunState
from disco_ray.tasks.base import Task

log = logging.getLogger("disco_ray.pipeline")


def load_run_task(config: RunConfig, output_dir: Path) -> Task:
    """The task named by the config: a benchmark, a local file or a factory."""
    from disco_ray.tasks import load_task

    section = config.task
    if section.factory:
        task = call_factory(section.factory, section.options, output_dir, config.source,
                            "task.factory")
        if not isinstance(task, Task):
            raise config_error(config.source, "task.factory", f"returned "
                               f"{type(task).__name__}", "return a disco_ray.tasks.Task")
    else:
        if section.path and not Path(section.path).is_file():
            raise config_error(config.source, "task.path", f"{section.path} not found (a "
                               f"relative path is read from the current directory, "
                               f"{Path.cwd()})", "run from the directory the config's paths "
                               "are relative to (the repository root for the shipped configs),"
                               " or give an absolute path")
        task = load_task(section.name or section.path, **section.options)
    if config.condense.k > len(task.samples):   # refused before any model runs
        raise config_error(config.source, "condense.k", f"{config.condense.k} anchors requested "
                           f"but task '{task.name}' has {len(task.samples)} samples",
                           f"choose k <= {len(task.samples)}")
    return task


def resolve_run_models(config: RunConfig, output_dir: Path
                       ) -> tuple[list[ModelSpec], list[ModelSpec]]:
    """Reference and target specs; every model name must be unique across both."""
    references = resolve_models(config.references, output_dir, config.source, "references")
    targets = resolve_models(config.targets, output_dir, config.source, "targets")
    names = [s.name for s in references + targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise config_error(config.source, "references/targets", f"model names appear more "
                           f"than once: {duplicates[:5]}", "give every model a unique name")
    for group, specs in (("references", references), ("targets", targets)):
        files: dict[str, str] = {}   # 'org/ckpt' and 'org_ckpt' would share one cache part
        for spec in specs:
            other = files.setdefault(part_name(spec.name), spec.name)
            if other != spec.name:
                raise config_error(config.source, group, f"model names '{other}' and "
                                   f"'{spec.name}' share the cache file "
                                   f"{part_name(spec.name)}", "rename one of them")
    log.info("%d reference model(s), %d target model(s)", len(references), len(targets))
    return references, targets


def check_backends(source: str, specs: list[ModelSpec]) -> None:
    """Refuse an unknown backend or backend option before any model runs (the actor would
    fail late, or ignore a misspelt option)."""
    for spec in specs:
        try:
            check_spec(spec)
        except ValueError as err:
            raise ConfigError(f"{source}: {err}") from err


def evaluate_full_task(state: RunState, task: Task, references: list[ModelSpec],
                       targets: list[ModelSpec]) -> dict[str, Path]:
    """References (and, for a true score, targets) on every sample; their parts by name."""
    jobs = [(s, state.cache("references")) for s in references]
    if state.config.targets.compute_true_score:
        jobs += [(s, state.cache("targets")) for s in targets]
    with state.stage("evaluate_full"):
        return _evaluate(state, task, jobs, choice_count(task), "full task")


def evaluate_targets(state: RunState, task: Task, bench: CondensedBenchmark,
                     targets: list[ModelSpec], full_parts: dict[str, Path]) -> dict[str, Path]:
    """Targets without full-task outputs run on the anchors only; every target's part. Full-task
    outputs an earlier run cached (with compute_true_score) hold the anchors: they are used."""
    cache, n_choices = state.cache("targets"), choice_count(task)
    todo = [s for s in targets if s.name not in full_parts and s.name not in state.failed]
    digest = samples_hash(task)
    cached_full = {s.name: cache.part(s.name) for s in todo
                   if cache.has(s.name, cache_key(s, task, n_choices, digest))}
    for name in cached_full:
        state.models[name] = {"phase": "full task", "n_samples": len(task.samples),
                              "cached": True}
    if cached_full:
        log.info("anchors: %d target(s) predicted from their cached full-task outputs",
                 len(cached_full))
    with state.stage("evaluate_anchors"):
        anchor_parts = _evaluate(state, task.subset(bench.anchor_ids),
                                 [(s, cache) for s in todo if s.name not in cached_full],
                                 n_choices, "anchors")
    parts = {**full_parts, **cached_full, **anchor_parts}
    return {s.name: parts[s.name] for s in targets if s.name in parts}


def _evaluate(state: RunState, task: Task, jobs: Sequence[tuple[ModelSpec, OutputCache]],
              n_choices: int, desc: str) -> dict[str, Path]:
    """Outputs of every model on `task`, from the cache or from Ray actors; returns the parts
    of the models that finished."""
    from disco_ray.distributed.scheduler import evaluate_models

    digest = samples_hash(task)
    keys = {spec.name: cache_key(spec, task, n_choices, digest) for spec, _ in jobs}
    caches = {spec.name: cache for spec, cache in jobs}
    todo = [spec for spec, cache in jobs if not cache.has(spec.name, keys[spec.name])]
    if jobs:   # targets that ran on the full task have no anchors-only job
        log.info("%s (%d samples): %d model(s) cached, %d to run", desc, len(task.samples),
                 len(jobs) - len(todo), len(todo))
    for spec, _ in jobs:
        state.models[spec.name] = {"phase": desc, "n_samples": len(task.samples), "cached": True}

    def store(spec: ModelSpec, loglikelihoods: list[np.ndarray]) -> None:
        outputs = model_outputs(task, spec.name, loglikelihoods, n_choices)
        caches[spec.name].write(outputs, keys[spec.name])

    if todo:
        state.ensure_ray()
        runs = evaluate_models(todo, task.samples, state.config.resources, store,
                               loader=state.loader, wait_for_autoscaler=state.wait_for_autoscaler,
                               progress=not state.quiet, desc=desc)
        for model_run in runs:
            record = {k: v for k, v in asdict(model_run).items() if k != "name"}
            state.models[model_run.name].update(cached=False, **record)
            if model_run.error:
                state.failed[model_run.name] = model_run.error
    return {spec.name: cache.part(spec.name) for spec, cache in jobs
            if spec.name not in state.failed}


def choice_count(task: Task) -> int:
    """Choices per sample that every model's outputs are padded to: the task's maximum."""
    return max(s.n_options for s in task.samples)


def model_outputs(task: Task, model_id: str, loglikelihoods: Sequence[np.ndarray],
                  n_choices: int) -> ModelOutputs:
    """One model's outputs: softmax of the metric's choice scores, padded to `n_choices`."""
    if len(loglikelihoods) != len(task.samples):
        raise OutputsError(f"model '{model_id}': {len(loglikelihoods)} results for "
                           f"{len(task.samples)} samples. Fix: the backend must answer every "
                           "sample it is given")
    scores = task.choice_scores(loglikelihoods)
    probs = np.zeros((1, len(task.samples), n_choices))
    for i, (sample, values) in enumerate(zip(task.samples, scores)):
        if len(values) != sample.n_options:
            raise OutputsError(f"model '{model_id}': sample '{sample.sample_id}' got "
                               f"{len(values)} log-likelihoods for {sample.n_options} choices. "
                               "Fix: the backend must score every option")
        probs[0, i, :len(values)] = softmax(values)
    groups = [s.group for s in task.samples]
    return ModelOutputs.from_probs(
        [model_id], task.sample_ids, probs, np.array([s.gold for s in task.samples]),
        groups=None if all(g is None for g in groups) else [str(g) for g in groups],
        source=f"model '{model_id}' on task '{task.name}'")
