"""`write_report`: read a run's output directory, draw the figures, write report.html/.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from disco_ray.condensed import selection_name
from disco_ray.disagreement import disagreement_scores
from disco_ray.io import atomic_path
from disco_ray.metamodels import describe_metamodel
from disco_ray.outputs import ModelOutputs
from disco_ray.report.curve import CURVE_METHODS, HOLDOUT, anchor_curve, curve_ks
from disco_ray.report.data import RunOutput, load_run, reference_outputs
from disco_ray.report.html import ReportFigure, render_html
from disco_ray.report.plots import (curve_plot, disagreement_plot, population_plot,
                                    prediction_plot)
from disco_ray.report.tables import (REPORT_NAME, accuracy_line, accuracy_summary, cost_line,
                                     model_rows)
from disco_ray.signatures import anchor_accuracy

CURVE_SEEDS = 2


def _prediction_figure(result: RunOutput, references: ModelOutputs | None) -> ReportFigure:
    reference_scores = None if references is None else references.scores()
    png = prediction_plot(result.predictions, reference_scores)
    band = "" if references is None else " Grey band: the reference models' true scores."
    if result.has_true_scores:
        return ReportFigure("Predicted vs true score", png, (
            "Each target's predicted score against its true score on the full benchmark "
            "(computed because targets.compute_true_score is on). Bars: 90% prediction "
            "intervals; red: outside the reference population (interval widened); amber: at "
            "the frontier (the interval reaches above the strongest reference's score)." + band))
    return ReportFigure("Predicted scores", png, (
        "Each target's predicted score with its 90% interval; red: outside the reference "
        "population; amber: at the frontier. True scores were not computed "
        "(targets.compute_true_score is off)." + band))


def _population_figure(result: RunOutput, references: ModelOutputs) -> ReportFigure:
    accuracy = anchor_accuracy(references,
                               references.sample_index(result.condensed["anchor_ids"]))
    png = population_plot(result.predictions, accuracy, references.scores())
    return ReportFigure("Targets against the references", png, (
        "Each reference model's accuracy on the anchors against its true full-benchmark score "
        "(grey), and each target's anchor accuracy against its predicted score with its 90% "
        "interval (red: outside the reference population; amber: at the frontier). A target "
        "right of the dashed line (the highest anchor accuracy of any reference) or above the "
        "dotted one (the highest score) lies beyond every reference: its prediction "
        "extrapolates a relation that the references cannot check there, so treat it as "
        "rough."))


def _curve_figure(result: RunOutput, references: ModelOutputs,
                  seeds: int) -> tuple[ReportFigure, pd.DataFrame]:
    k, method = result.condensed_k, result.run["config"]["condense"]["method"]
    curve = anchor_curve(references, curve_ks(k, references.n_samples), seeds=seeds)
    cv_mae = result.condensed["choice"].get("cv_mae")
    star = None if cv_mae is None else 100 * cv_mae
    caption = (f"Cross-validated on the {references.n_models} reference models only: in each of "
               f"{seeds} random splits, {1 - HOLDOUT:.0%} of the references condense the "
               f"benchmark and the other {HOLDOUT:.0%} are predicted; lines show the mean MAE "
               f"over the splits (bars: standard deviation) for {', '.join(CURVE_METHODS)}. "
               f"The star is this run's method ({method}) at k={k}: the out-of-fold MAE that "
               "condense measured over all references (slightly optimistic when the method "
               "chose among candidate configurations on the same folds; repeating such a "
               "method for every split would cost too much).")
    return ReportFigure("Error against the number of anchors", curve_plot(curve, k, star),
                        caption), curve


def _disagreement_figure(result: RunOutput,
                         references: ModelOutputs | None) -> ReportFigure | None:
    selection = selection_name(result.condensed["settings"], result.condensed["choice"])
    kind, _, score = selection.partition("-")
    if kind not in ("top", "stratified") or score not in ("pds", "jsd"):
        score = result.condensed["settings"]["score"]
    if np.ptp(result.disagreement) > 0:
        scores, mask = result.disagreement, result.anchor_mask
        note = "Scores as computed by condense over its guiding reference models."
    elif references is not None:
        scores = disagreement_scores(references.distributions(), score)
        mask = np.isin(references.sample_ids, result.condensed["anchor_ids"])
        note = (f"This run chose its anchors by '{selection}', not by disagreement; the scores "
                f"were computed here over all {references.n_models} references for comparison.")
    else:
        return None
    caption = (f"Per-sample {score.upper()} disagreement (histogram) with the "
               f"{int(mask.sum())} anchors in orange. {note}")
    return ReportFigure("Disagreement and anchors",
                        disagreement_plot(scores, mask, score.upper()), caption)


def run_facts(result: RunOutput, rows: list[dict]) -> dict:
    """The run's headline facts (report.json and the page's cards)."""
    run, choice = result.run, result.condensed["choice"]
    return {
        "name": run.get("name"), "n_references": run.get("n_references"),
        "n_targets": run.get("n_targets"), "n_samples": run.get("n_samples"),
        "k": result.condensed_k, "method": run["config"]["condense"]["method"],
        "selection": selection_name(result.condensed["settings"], choice),
        "metamodel": describe_metamodel(choice["metamodel"]),
        "reference_cv_mae_pp": None if choice.get("cv_mae") is None else 100 * choice["cv_mae"],
        "cost_share": run.get("cost_share"), "targets": accuracy_summary(rows),
        "timings_s": run.get("timings_s", {}), "failed": run.get("failed", {}),
    }


def _cards(facts: dict) -> list[tuple[str, str]]:
    cards = [("reference models", str(facts["n_references"])),
             ("target models", str(facts["n_targets"])),
             ("benchmark samples", str(facts["n_samples"])), ("anchors", str(facts["k"]))]
    if facts["cost_share"] is not None:
        cards.append(("cost per target", f"{100 * facts['cost_share']:.1f}% of full"))
    if facts["targets"] is not None:
        cards += [("MAE on targets", f"{facts['targets']['mae_pp']:.1f} pp"),
                  ("true inside 90% interval",
                   f"{facts['targets']['covered']}/{facts['targets']['n']}")]
    if facts["reference_cv_mae_pp"] is not None:
        cards.append(("out-of-fold MAE, refs", f"{facts['reference_cv_mae_pp']:.1f} pp"))
    return cards


def _notes(result: RunOutput, rows: list[dict]) -> list[str]:
    notes = [accuracy_line(accuracy_summary(rows)), cost_line(result.run)]
    if result.has_true_scores:
        notes.append("Error = predicted - true, in percentage points. True scores come from "
                     "running the targets on the full benchmark, which DISCO itself never needs.")
    return [n for n in notes if n]


def write_report(output_dir: str | Path, curve_seeds: int = CURVE_SEEDS) -> Path:
    """Write OUTPUT/report.html (self-contained) and report.json; return the HTML's path.

    Also writes predictions.csv when the run did not. The anchor curve condenses the references
    `curve_seeds` x (about 4 values of k) x 3 times; `curve_seeds=0` leaves it out.
    """
    start = time.perf_counter()
    result = load_run(output_dir)
    references = reference_outputs(result)
    rows = model_rows(result.predictions)
    figures = [_prediction_figure(result, references)]
    if references is not None:
        figures.append(_population_figure(result, references))
    curve = None
    if references is not None and curve_seeds > 0:
        with threadpool_limits(1):  # many tiny fits: threaded BLAS only adds contention
            figure, curve = _curve_figure(result, references, curve_seeds)
        figures.append(figure)
    disagreement = _disagreement_figure(result, references)
    figures += [disagreement] if disagreement else []
    facts = run_facts(result, rows)
    timings = {**facts["timings_s"], "report": time.perf_counter() - start}
    subtitle = (f"DISCO predicted each target's full-benchmark score from its outputs on "
                f"{facts['k']} of {facts['n_samples']} samples. Method {facts['method']}: "
                f"anchors by {facts['selection']}, metamodel {facts['metamodel']}.")
    page = render_html(f"DISCO report: {facts['name']}", subtitle, _cards(facts), rows,
                       _notes(result, rows), figures, timings, facts["failed"],
                       result.run.get("config", {}))
    return _write(result.output_dir, page, {
        "facts": {**facts, "timings_s": timings}, "models": rows,
        "anchor_curve": None if curve is None else curve.to_dict(orient="records")},
        result.predictions)


def _write(output_dir: Path, page: str, report: dict, predictions: list[dict]) -> Path:
    path = output_dir / REPORT_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    with atomic_path(output_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    if not (output_dir / "predictions.csv").exists():
        with atomic_path(output_dir / "predictions.csv") as tmp:
            pd.DataFrame(predictions).to_csv(tmp, index=False)
    return path
