"""The whole DISCO pipeline on Ray, from a YAML config to predictions (configs/README.md).

Stages: load the task -> resolve reference and target models -> references on the full task
(Ray actors, cached per model) -> disagreement (Ray Data reduction over the parts) -> anchors
and metamodel on the driver (`condense`) -> targets on the anchors only -> predictions,
run.json and the report. `run(config)` is the Python API, `run_from_config(path)` the CLI's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from scipy.special import softmax

from disco_ray.backends.base import ModelSpec, check_spec
from disco_ray.condensed import (CondensedBenchmark, CondenseSettings, Prediction, condense,
                                 data_hash, selection_candidates)
from disco_ray.config import (ConfigError, RunConfig, call_factory, config_error, load_config,
                              resolve_models)
from disco_ray.distributed.actors import Loader
from disco_ray.distributed.cache import (OutputCache, cache_key, part_name, read_parts,
                                         samples_hash)
from disco_ray.distributed.session import address_from_env
from disco_ray.io.benchmark import MANIFEST
from disco_ray.io import atomic_path
from disco_ray.methods import method_settings
from disco_ray.outputs import ModelOutputs, OutputsError
from disco_ray.tasks.base import Task

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("configs") / "demo.yaml"


# what an earlier (or interrupted) run leaves; models/: a factory's (the smoke configs')
RUN_MARKERS = ("run.json", "outputs", "condensed", "models")


class PipelineError(RuntimeError):
    """The run cannot go on (e.g. every reference model failed)."""


@dataclass
class RunResult:
    """What a run produced (everything is also written under `output_dir`)."""

    output_dir: Path
    benchmark: CondensedBenchmark
    predictions: list[dict]
    failed: dict[str, str]
    timings_s: dict[str, float]
    info: dict[str, Any]


@dataclass
class _Run:
    """Per-run state shared by the stages."""

    config: RunConfig
    output_dir: Path
    loader: Loader | None
    quiet: bool
    address: str | None
    exits: contextlib.ExitStack
    timings: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)
    ray_started: bool = False

    def cache(self, group: str) -> OutputCache:
        """The output parts of `references` or `targets`."""
        return OutputCache(self.output_dir / "outputs" / group)

    @property
    def wait_for_autoscaler(self) -> bool:
        """On a cluster (not a Ray started here), pending models wait for new nodes."""
        return self.address not in (None, "local")

    def ensure_ray(self) -> None:
        """Join or start Ray on first use (a fully cached run may never need it)."""
        from disco_ray.distributed.session import ray_session

        if not self.ray_started:
            with self.stage("start_ray"):
                self.exits.enter_context(
                    ray_session(self.address, self.config.ray.num_cpus, self.quiet))
            self.ray_started = True

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage into `timings` (stages may nest: start_ray inside evaluate_full)."""
        log.info("stage %s", name)
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 3)


# -- front doors --------------------------------------------------------------------------------
def run_from_config(config_path: str | Path | None = None, output: str | Path | None = None,
                    address: str | None = None, quiet: bool = False) -> RunResult:
    """Load a YAML config (default: configs/demo.yaml) and run it; see `run`."""
    path = Path(config_path) if config_path else _default_config()
    return run(load_config(path), output=output, address=address, quiet=quiet)


def run(config: RunConfig, *, output: str | Path | None = None, address: str | None = None,
        quiet: bool = False, loader: Loader | None = None) -> RunResult:
    """Run the pipeline.

    Args:
        config: the validated configuration.
        output: output directory (default: `config.output`, else runs/<name>).
        address: Ray address (default: `config.ray.address`, else $RAY_ADDRESS unless it is
            a job-submission http(s) URL, else a local Ray started in-process). An existing
            Ray session is always reused.
        quiet: no progress bars and no Ray info logs.
        loader: how model actors load backends (default: the backend registry); a hook for
            custom backends that are not importable by name on the workers.
    """
    output_dir = Path(output or config.output or Path("runs") / config.name)
    _check_output_dir(config.source, output_dir)
    address = address or config.ray.address or address_from_env()
    log.info("run '%s' -> %s", config.name, output_dir)
    with contextlib.ExitStack() as exits:
        result = _stages(_Run(config, output_dir, loader, quiet, address, exits))
    _report(config, output_dir)
    return result


def _check_output_dir(source: str, output_dir: Path) -> None:
    """Refuse a non-empty directory that holds no earlier run: a run writes run.json, the
    predictions and the report there, over whatever has those names."""
    if output_dir.is_file() or (output_dir.is_dir() and any(output_dir.iterdir()) and not any(
            (output_dir / name).exists() for name in RUN_MARKERS)):
        raise config_error(source, "output", f"{output_dir} is not empty and holds no earlier "
                           f"run ({', '.join(RUN_MARKERS)})", "choose a new or empty directory "
                           "(or give --output)")


def _default_config() -> Path:
    for candidate in (DEFAULT_CONFIG, Path(__file__).resolve().parent.parent / DEFAULT_CONFIG):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{DEFAULT_CONFIG}: the default config was not found. Fix: give a "
                            "config path, e.g. `disco-ray run configs/smoke_llm_cpu.yaml`")


def _stages(state: _Run) -> RunResult:
    config, out = state.config, state.output_dir
    with state.stage("load_task"):
        task = load_run_task(config, out)
    with state.stage("resolve_models"):
        references, targets = resolve_run_models(config, out)
        if state.loader is None:   # a custom loader may know other backends
            _check_backends(config.source, references + targets)
    full_parts = _evaluate_full_task(state, task, references, targets)
    bench = _condense(state, task, {s.name: full_parts[s.name] for s in references
                                    if s.name in full_parts})
    target_parts = _evaluate_targets(state, task, bench, targets, full_parts)
    with state.stage("predict"):
        predictions = predict(bench, target_parts, config.targets.compute_true_score)
    info = _write_results(state, task, bench, predictions, len(targets))
    return RunResult(out, bench, predictions, dict(state.failed), dict(state.timings), info)


def _evaluate_full_task(state: _Run, task: Task, references: list[ModelSpec],
                        targets: list[ModelSpec]) -> dict[str, Path]:
    """References (and, for a true score, targets) on every sample; their parts by name."""
    jobs = [(s, state.cache("references")) for s in references]
    if state.config.targets.compute_true_score:
        jobs += [(s, state.cache("targets")) for s in targets]
    with state.stage("evaluate_full"):
        return _evaluate(state, task, jobs, choice_count(task), "full task")


def _condense(state: _Run, task: Task, ref_parts: dict[str, Path]) -> CondensedBenchmark:
    """Disagreement (Ray Data), then anchors and metamodel on the driver; saved to condensed/."""
    if not ref_parts:
        first = "; ".join(f"{name}: {error.splitlines()[0][:200]}"
                          for name, error in list(state.failed.items())[:3])
        raise PipelineError(f"every reference model failed ({len(state.failed)}), e.g. {first}."
                            " Fix: check the errors above (backend, path, resources) and run "
                            "again")
    condense_config = state.config.condense
    settings = method_settings(condense_config.method, condense_config.k, condense_config.seed)
    references = read_parts(list(ref_parts.values()))
    saved = _saved_benchmark(state.output_dir / "condensed", references, settings)
    if saved is not None:
        log.info("condensed/ reused (same reference outputs and settings): %s", saved.describe())
        return saved
    with state.stage("disagreement"):
        scores = _disagreement_scores(state, ref_parts, settings)
    with state.stage("condense"):
        bench = condense(references, settings, scores)
        bench.save(state.output_dir / "condensed")
    log.info("condensed %d samples to %s", len(task.samples), bench.describe())
    return bench


def _saved_benchmark(directory: Path, references: ModelOutputs,
                     settings: CondenseSettings) -> CondensedBenchmark | None:
    """An earlier run's benchmark when it was condensed from these very reference outputs with
    these settings (condensing is deterministic: it would come out the same); else None."""
    if not (directory / MANIFEST).is_file():
        return None
    try:
        saved = CondensedBenchmark.load(directory)
    except (OutputsError, ValueError, KeyError, TypeError) as err:   # another format: redo it
        log.info("condensed/ not reused (%s)", err)
        return None
    same = saved.data_hash == data_hash(references) and saved.settings == settings
    return saved if same else None


def _evaluate_targets(state: _Run, task: Task, bench: CondensedBenchmark,
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


# -- stages -----------------------------------------------------------------------------------
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


def _check_backends(source: str, specs: list[ModelSpec]) -> None:
    """Refuse an unknown backend or backend option before any model runs (the actor would
    fail late, or ignore a misspelt option)."""
    for spec in specs:
        try:
            check_spec(spec)
        except ValueError as err:
            raise ConfigError(f"{source}: {err}") from err


def _evaluate(state: _Run, task: Task, jobs: Sequence[tuple[ModelSpec, OutputCache]],
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


def _disagreement_scores(state: _Run, parts: dict[str, Path],
                         settings: CondenseSettings) -> dict[str, np.ndarray] | None:
    """Per-sample PDS and JSD over all references, reduced with Ray Data.

    None when the method needs no scores (random or clustered anchors) or guides disagreement
    by a subset of the references (`condense` scores such subsets in memory).
    """
    kinds = {score for kind, score in selection_candidates(settings)
             if kind not in ("random", "cluster")}
    if not kinds or settings.guiding != (None,):
        log.info("disagreement: not reduced on Ray; condense handles the method's selection")
        return None
    from disco_ray.distributed.reduction import ray_disagreement_state

    state.ensure_ray()
    reduced = ray_disagreement_state(list(parts.values()))
    return {kind: reduced.scores(kind) for kind in kinds}


def predict(bench: CondensedBenchmark, parts: dict[str, Path],
            with_true_score: bool) -> list[dict]:
    """Prediction rows of every target (contract: predictions.json)."""
    rows = []
    for path in parts.values():
        outputs = read_parts([path])
        true = float(outputs.scores()[0]) if with_true_score else None
        rows += [{**asdict(p), "true_score": true} for p in bench.predict(outputs)]
    return rows


# -- results --------------------------------------------------------------------------------------
def _write_results(state: _Run, task: Task, bench: CondensedBenchmark, predictions: list[dict],
                   n_targets: int) -> dict:
    """predictions.json/.csv and run.json, each written atomically."""
    import pandas as pd

    out = state.output_dir
    _write_json(out / "predictions.json", predictions)
    columns = [f.name for f in fields(Prediction)] + ["true_score"]
    with atomic_path(out / "predictions.csv") as tmp:
        pd.DataFrame(predictions, columns=columns).to_csv(tmp, index=False)
    n = len(task.samples)
    info = {"name": state.config.name, "output_dir": str(out), "config": state.config.to_json(),
            "timings_s": state.timings, "n_references": bench.references.n_models,
            "n_targets": n_targets,
            "n_samples": n, "k": bench.k, "cost_share": bench.k / n if n_targets else None,
            "failed": state.failed, "models": state.models}
    _write_json(out / "run.json", info)
    log.info("%d prediction(s) -> %s", len(predictions), out / "predictions.json")
    return info


def _write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _report(config: RunConfig, output_dir: Path) -> None:
    """report.html, if the report module is installed and the config asks for it."""
    if not config.report:
        return
    try:
        from disco_ray.report import write_report
    except ImportError as err:
        log.info("report skipped: disco_ray.report is not available (%s)", err)
        return
    log.info("report: %s", write_report(output_dir))
