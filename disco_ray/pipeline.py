"""The whole DISCO pipeline on Ray, from a YAML config to predictions (configs/README.md).

Stages: load the task -> resolve reference and target models -> references on the full task
(Ray actors, cached per model: `stages.models`) -> disagreement (Ray Data reduction) and anchors
and metamodel on the driver (`stages.condense`) -> targets on the anchors only -> predictions ->
the report's analysis (`analysis`) -> run.json and the report, all in the run directory
(`io.run`). `run(config)` is the Python API, `run_from_config(path)` the CLI's.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from disco_ray.analysis import CURVE_SEEDS, write_run_analysis
from disco_ray.condensed import CondensedBenchmark, Prediction
from disco_ray.config import RunConfig, config_error, load_config
from disco_ray.distributed.actors import Loader
from disco_ray.distributed.cache import read_parts
from disco_ray.distributed.session import address_from_env
from disco_ray.evaluation import CellRunner
from disco_ray.io.lock import LOCK_FILE, directory_lock
from disco_ray.io.run import RUN_MARKERS, RunDirectory
from disco_ray.stages.condense import condense_stage
from disco_ray.stages.models import (check_backends, choice_count, evaluate_full_task,
                                     evaluate_targets, load_run_task, model_outputs,
                                     resolve_run_models)
from disco_ray.stages.state import PipelineError, RunState
from disco_ray.outputs import ModelOutputs
from disco_ray.tasks.base import Task

__all__ = ["PipelineError", "RunResult", "choice_count", "load_run_task", "model_outputs",
           "predict", "resolve_run_models", "run", "run_from_config"]

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("configs") / "demo.yaml"


@dataclass
class RunResult:
    """What a run produced (everything is also written under `output_dir`)."""

    output_dir: Path
    benchmark: CondensedBenchmark
    predictions: list[dict]
    failed: dict[str, str]
    timings_s: dict[str, float]
    info: dict[str, Any]


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
    with directory_lock(output_dir):   # a second run into output_dir stops here
        _check_output_dir(config.source, output_dir)
        address = address or config.ray.address or address_from_env()
        log.info("run '%s' -> %s", config.name, output_dir)
        with contextlib.ExitStack() as exits:
            result = _stages(RunState(config, output_dir, loader, quiet, address, exits))
        _report(config, output_dir)
    return result


def _check_output_dir(source: str, output_dir: Path) -> None:
    """Refuse a non-empty directory that holds no earlier run: a run writes run.json, the
    predictions and the report there, over whatever has those names. (Run under the
    directory's lock, which refuses a file.)"""
    if (output_dir.is_dir() and any(p.name != LOCK_FILE for p in output_dir.iterdir())
            and not RunDirectory(output_dir).is_earlier_run()):
        raise config_error(source, "output", f"{output_dir} is not empty and holds no earlier "
                           f"run ({', '.join(RUN_MARKERS)})", "choose a new or empty directory "
                           "(or give --output)")


def _default_config() -> Path:
    for candidate in (DEFAULT_CONFIG, Path(__file__).resolve().parent.parent / DEFAULT_CONFIG):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{DEFAULT_CONFIG}: the default config was not found. Fix: give a "
                            "config path, e.g. `disco-ray run configs/smoke_llm_cpu.yaml`")


def _stages(state: RunState) -> RunResult:
    config, out = state.config, state.output_dir
    with state.stage("load_task"):
        task = load_run_task(config, out)
    with state.stage("resolve_models"):
        references, targets = resolve_run_models(config, out)
        if state.loader is None:   # a custom loader may know other backends
            check_backends(config.source, references + targets)
    full_parts = evaluate_full_task(state, task, references, targets)
    ref_parts = {s.name: full_parts[s.name] for s in references if s.name in full_parts}
    bench, reference_outputs = condense_stage(state, task, ref_parts)
    target_parts = evaluate_targets(state, task, bench, targets, full_parts)
    with state.stage("predict"):
        predictions = predict(bench, target_parts, config.targets.compute_true_score)
    with state.stage("analyze"):   # the anchor curve only for a report, its cells on Ray
        curve = {"seeds": CURVE_SEEDS, "runner": _ray_cell_runner(state)} if config.report else {
            "seeds": 0}
        write_run_analysis(RunDirectory(out), bench, _by_part_name(reference_outputs, ref_parts),
                           config.condense.method, **curve)
    info = _write_results(state, task, bench, predictions, len(targets))
    return RunResult(out, bench, predictions, dict(state.failed), dict(state.timings), info)


def predict(bench: CondensedBenchmark, parts: dict[str, Path],
            with_true_score: bool) -> list[dict]:
    """Prediction rows of every target (contract: predictions.json)."""
    rows = []
    for path in parts.values():
        outputs = read_parts([path])
        true = float(outputs.scores()[0]) if with_true_score else None
        rows += [{**asdict(p), "true_score": true} for p in bench.predict(outputs)]
    return rows


def _by_part_name(references: ModelOutputs, parts: dict[str, Path]) -> ModelOutputs:
    """The references in the order of their cached parts' file names (the order a reader of
    the run directory sees), so that the anchor curve's random splits do not depend on the
    order the config lists the models in."""
    names = [str(parts[model_id]) for model_id in references.model_ids.tolist()]
    return references.take_models(np.argsort(names, kind="stable"))


def _ray_cell_runner(state: RunState) -> CellRunner:
    """Evaluation cells as Ray tasks, as many at once as the Ray session has CPUs."""
    import ray

    from disco_ray.distributed.evaluation import run_cells_on_ray

    state.ensure_ray()
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return functools.partial(run_cells_on_ray, max_in_flight=max(1, cpus))


# -- results --------------------------------------------------------------------------------------
def _write_results(state: RunState, task: Task, bench: CondensedBenchmark,
                   predictions: list[dict], n_targets: int) -> dict:
    """predictions.json/.csv and run.json, each written atomically."""
    run_dir = RunDirectory(state.output_dir)
    run_dir.write_predictions(predictions, [f.name for f in fields(Prediction)] + ["true_score"])
    n = len(task.samples)
    info = {"name": state.config.name, "output_dir": str(run_dir.path),
            "config": state.config.to_json(), "timings_s": state.timings,
            "n_references": bench.references.n_models, "n_targets": n_targets,
            "n_samples": n, "k": bench.k, "cost_share": bench.k / n if n_targets else None,
            "failed": state.failed, "models": state.models}
    run_dir.write_info(info)
    log.info("%d prediction(s) -> %s", len(predictions), run_dir.path / "predictions.json")
    return info


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
