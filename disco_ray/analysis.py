"""What a run's report draws, computed once by the pipeline and stored in the run directory.

`run_analysis` returns the condensed benchmark's facts, the anchor curve (the error against the
number of anchors of the run's own method and of baselines, by `evaluation`'s protocol on the
reference models only), each reference's anchor accuracy and score, and the per-sample
disagreement with the anchors marked. `write_run_analysis` stores it (`io.run`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from disco_ray.condensed import CondensedBenchmark
from disco_ray.disagreement import disagreement_scores
from disco_ray.evaluation import (RANDOM_HOLDOUT, CellRunner, held_out_predictions,
                                  per_seed_metrics, run_cells_in_process, summarize)
from disco_ray.io.run import RunDirectory
from disco_ray.metamodels import describe_metamodel
from disco_ray.outputs import ModelOutputs
from disco_ray.signatures import anchor_accuracy

BASELINES = {"pds_rf": "PDS top-k + random forest (the DISCO paper's)",
             "random_rf": "random anchors + random forest",
             "random_direct": "random anchors, plain mean"}
CURVE_KS = (10, 25, 50, 100)
CURVE_SEEDS = 2


def curve_ks(run_k: int, n_samples: int) -> list[int]:
    """The k grid of the curve: a few standard values and the run's own k, at most N."""
    return sorted(k for k in {*CURVE_KS, run_k} if k <= n_samples)


def curve_labels(method: str) -> dict[str, str]:
    """{method: label} of the curve's lines: the run's own method first, then the baselines."""
    return {method: f"{method} (this run's method)",
            **{name: label for name, label in BASELINES.items() if name != method}}


def anchor_curve(references: ModelOutputs, ks: Sequence[int], methods: Sequence[str],
                 seeds: int = CURVE_SEEDS, runner: CellRunner = run_cells_in_process
                 ) -> list[dict]:
    """MAE (pp) per (method, k) on references held out from the references: `seeds` random
    splits of `evaluation.model_splits` (20% held out, never leave-one-out), mean and standard
    deviation over the splits. `runner` runs the cells (e.g. as Ray tasks)."""
    with threadpool_limits(1):   # many small fits: threaded BLAS only adds contention
        predictions = held_out_predictions(references, methods, ks, ["random"], seeds,
                                           progress=False, runner=runner,
                                           leave_one_out_below=0)
    table = summarize(per_seed_metrics(predictions))
    return [{"method": row.method, "k": int(row.k), "mae_pp": float(row.mae_pp),
             "mae_pp_std": float(row.mae_pp_std)} for row in table.itertuples()]


def benchmark_facts(bench: CondensedBenchmark) -> dict:
    """The condensed benchmark as the report names it."""
    return {"k": bench.k, "design": bench.design.name,
            "metamodel": describe_metamodel(bench.choice["metamodel"]),
            "cv_mae_pp": 100 * bench.choice["cv_mae"]}


def disagreement_view(bench: CondensedBenchmark, references: ModelOutputs | None
                      ) -> tuple[dict, list[str], np.ndarray, np.ndarray]:
    """(facts, sample ids, per-sample disagreement, anchor mask) for the report's histogram:
    the scores condense chose the anchors by, else JSD over every reference for comparison
    (facts["score"] is None when there is neither)."""
    design, ids = bench.design, list(bench.disagreement)
    scores = np.fromiter(bench.disagreement.values(), dtype=np.float64, count=len(ids))
    score = design.score if design.by_disagreement else "jsd"
    note = "Scores as computed by condense over its guiding reference models."
    if np.ptp(scores) == 0 and references is None:
        return {"score": None, "note": ""}, ids, scores, np.isin(ids, bench.anchor_ids)
    if np.ptp(scores) == 0:
        ids = references.sample_ids.tolist()
        scores = disagreement_scores(references.distributions(), score)
        note = (f"This run chose its anchors by '{design.name}', not by disagreement; the "
                f"scores were computed over all {references.n_models} references for "
                "comparison.")
    return {"score": score, "note": note}, ids, scores, np.isin(ids, bench.anchor_ids)


def run_analysis(bench: CondensedBenchmark, references: ModelOutputs | None, method: str,
                 seeds: int = CURVE_SEEDS, runner: CellRunner = run_cells_in_process
                 ) -> tuple[dict, list[str], np.ndarray, np.ndarray]:
    """(analysis, sample ids, disagreement, anchor mask) of a run; without the references'
    full outputs, no curve and no reference points; `seeds` 0: no curve."""
    facts, ids, scores, mask = disagreement_view(bench, references)
    analysis = {"benchmark": benchmark_facts(bench), "disagreement": facts,
                "anchor_curve": None, "references": None}
    if references is not None:
        labels = curve_labels(method)
        analysis["references"] = {
            "model_ids": references.model_ids.tolist(), "scores": references.scores().tolist(),
            "anchor_accuracy": anchor_accuracy(
                references, references.sample_index(bench.anchor_ids)).tolist()}
        if seeds > 0:
            analysis["anchor_curve"] = {
                "seeds": seeds, "holdout": RANDOM_HOLDOUT, "n_references": references.n_models,
                "labels": labels, "rows": anchor_curve(
                    references, curve_ks(bench.k, references.n_samples), list(labels), seeds,
                    runner)}
    return analysis, ids, scores, mask


def write_run_analysis(run_dir: RunDirectory, bench: CondensedBenchmark,
                       references: ModelOutputs | None, method: str,
                       seeds: int = CURVE_SEEDS, runner: CellRunner = run_cells_in_process
                       ) -> dict:
    """Compute the run's analysis and store it in its run directory; return the analysis."""
    analysis, ids, scores, mask = run_analysis(bench, references, method, seeds, runner)
    run_dir.write_analysis(analysis, ids, scores, mask)
    return analysis
