"""The pipeline's condense stage: disagreement reduced on Ray, then anchors and metamodel on
the driver; an earlier run's benchmark is reused when nothing it depends on changed."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from disco_ray.condensed import CondensedBenchmark, data_hash
from disco_ray.config import RunConfig
from disco_ray.design import AnchorDesign, CondenseSettings
from disco_ray.distributed.cache import read_parts
from disco_ray.io.benchmark import MANIFEST, read_benchmark, write_benchmark
from disco_ray.io.run import RunDirectory
from disco_ray.methods import method_settings
from disco_ray.outputs import ModelOutputs, OutputsError
from disco_ray.search import condense
from disco_ray.stages.state import PipelineError, RunState
from disco_ray.tasks.base import Task

log = logging.getLogger("disco_ray.pipeline")


def condense_stage(state: RunState, task: Task, ref_parts: dict[str, Path]
                   ) -> tuple[CondensedBenchmark, ModelOutputs]:
    """Disagreement (Ray Data), then anchors and metamodel on the driver; saved to condensed/.
    Returns the benchmark and the references' full-task outputs."""
    if not ref_parts:
        first = "; ".join(f"{name}: {error.splitlines()[0][:200]}"
                          for name, error in list(state.failed.items())[:3])
        raise PipelineError(f"every reference model failed ({len(state.failed)}), e.g. {first}."
                            " Fix: check the errors above (backend, path, resources) and run "
                            "again")
    settings = run_settings(state.config)
    references = read_parts(list(ref_parts.values()))
    directory = RunDirectory(state.output_dir).condensed
    saved = _saved_benchmark(directory, references, settings)
    if saved is not None:
        log.info("condensed/ reused (same reference outputs and settings): %s", saved.describe())
        return saved, references
    with state.stage("disagreement"):
        scores = _disagreement_scores(state, ref_parts, settings)
    with state.stage("condense"):
        bench = condense(references, settings, scores)
        write_benchmark(bench, directory)
    log.info("condensed %d samples to %s", len(task.samples), bench.describe())
    return bench, references


def run_settings(config: RunConfig) -> CondenseSettings:
    """The condense settings a config asks for: its method's, with its designs if it has any."""
    section = config.condense
    return method_settings(section.method, section.k, section.seed,
                           [AnchorDesign.parse(design) for design in section.designs])


def _saved_benchmark(directory: Path, references: ModelOutputs,
                     settings: CondenseSettings) -> CondensedBenchmark | None:
    """An earlier run's benchmark when it was condensed from these very reference outputs with
    these settings (condensing is deterministic: it would come out the same); else None."""
    if not (directory / MANIFEST).is_file():
        return None
    try:
        saved = read_benchmark(directory)
    except (OutputsError, ValueError, KeyError, TypeError) as err:   # another format: redo it
        log.info("condensed/ not reused (%s)", err)
        return None
    same = saved.data_hash == data_hash(references) and saved.settings == settings
    return saved if same else None


def _disagreement_scores(state: RunState, parts: dict[str, Path],
                         settings: CondenseSettings) -> dict[str, np.ndarray] | None:
    """Per-sample PDS and JSD over all references, reduced with Ray Data.

    None when the method needs no scores (random or clustered anchors) or guides disagreement
    by a subset of the references (`condense` scores such subsets in memory).
    """
    kinds = {design.score for design in settings.designs
             if design.by_disagreement and design.guiding is None}
    if not kinds:
        log.info("disagreement: not reduced on Ray; condense handles the method's selection")
        return None
    from disco_ray.distributed.reduction import ray_disagreement_state

    state.ensure_ray()
    reduced = ray_disagreement_state(list(parts.values()))
    return {kind: reduced.scores(kind) for kind in kinds}
