"""`write_report`: draw what a run stored (`io.run`) and write report.html and report.json."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from disco_ray.io.run import PREDICTIONS_CSV, RunDirectory, RunRecord
from disco_ray.report.html import ReportFigure, render_html
from disco_ray.report.plots import (curve_plot, disagreement_plot, population_plot,
                                    prediction_plot)
from disco_ray.report.tables import accuracy_line, accuracy_summary, cost_line, model_rows


def _references(result: RunRecord) -> dict | None:
    """The references' model ids, scores and anchor accuracy, when the run stored them."""
    return None if result.analysis is None else result.analysis.get("references")


def _prediction_figure(result: RunRecord) -> ReportFigure:
    references = _references(result)
    reference_scores = None if references is None else np.asarray(references["scores"])
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


def _population_figure(result: RunRecord, references: dict) -> ReportFigure:
    png = population_plot(result.predictions, np.asarray(references["anchor_accuracy"]),
                          np.asarray(references["scores"]))
    return ReportFigure("Targets against the references", png, (
        "Each reference model's accuracy on the anchors against its true full-benchmark score "
        "(grey), and each target's anchor accuracy against its predicted score with its 90% "
        "interval (red: outside the reference population; amber: at the frontier). A target "
        "right of the dashed line (the highest anchor accuracy of any reference) or above the "
        "dotted one (the highest score) lies beyond every reference: its prediction "
        "extrapolates a relation that the references cannot check there, so treat it as "
        "rough."))


def _curve_figure(result: RunRecord, curve: dict) -> ReportFigure:
    k, method = result.analysis["benchmark"]["k"], result.run["config"]["condense"]["method"]
    rows = pd.DataFrame(curve["rows"])
    holdout = curve["holdout"]
    caption = (f"Cross-validated on the {curve['n_references']} reference models only: in each "
               f"of {curve['seeds']} random splits, {1 - holdout:.0%} of the references condense "
               f"the benchmark and the other {holdout:.0%} are predicted; lines show the mean "
               "MAE over the splits (bars: standard deviation) of this run's method "
               f"({method}, run at k={k}) and of baselines: "
               + "; ".join(label for name, label in curve["labels"].items() if name != method)
               + ".")
    return ReportFigure("Error against the number of anchors",
                        curve_plot(rows, curve["labels"], method, k), caption)


def _disagreement_figure(result: RunRecord) -> ReportFigure | None:
    facts = None if result.analysis is None else result.analysis["disagreement"]
    if facts is None or facts["score"] is None:
        return None
    score, mask = facts["score"], result.anchor_mask
    caption = (f"Per-sample {score.upper()} disagreement (histogram) with the "
               f"{int(mask.sum())} anchors in orange. {facts['note']}")
    return ReportFigure("Disagreement and anchors",
                        disagreement_plot(result.disagreement, mask, score.upper()), caption)


def run_facts(result: RunRecord, rows: list[dict]) -> dict:
    """The run's headline facts (report.json and the page's cards)."""
    run = result.run
    bench = {} if result.analysis is None else result.analysis["benchmark"]
    return {
        "name": run.get("name"), "n_references": run.get("n_references"),
        "n_targets": run.get("n_targets"), "n_samples": run.get("n_samples"),
        "k": bench.get("k", run.get("k")), "method": run["config"]["condense"]["method"],
        "selection": bench.get("design"), "metamodel": bench.get("metamodel"),
        "reference_cv_mae_pp": bench.get("cv_mae_pp"),
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


def _notes(result: RunRecord, rows: list[dict]) -> list[str]:
    notes = [accuracy_line(accuracy_summary(rows)), cost_line(result.run)]
    if result.has_true_scores:
        notes.append("Error = predicted - true, in percentage points. True scores come from "
                     "running the targets on the full benchmark, which DISCO itself never needs.")
    return [n for n in notes if n]


def write_report(output_dir: str | Path) -> Path:
    """Write OUTPUT/report.html (self-contained) and report.json from what the run stored;
    return the HTML's path. Also writes predictions.csv when the run did not."""
    start = time.perf_counter()
    run_dir = RunDirectory(Path(output_dir))
    result = run_dir.read()
    rows = model_rows(result.predictions)
    figures = [_prediction_figure(result)]
    references = _references(result)
    if references is not None:
        figures.append(_population_figure(result, references))
    curve = None if result.analysis is None else result.analysis.get("anchor_curve")
    if curve is not None:
        figures.append(_curve_figure(result, curve))
    disagreement = _disagreement_figure(result)
    figures += [disagreement] if disagreement else []
    facts = run_facts(result, rows)
    timings = {**facts["timings_s"], "report": time.perf_counter() - start}
    subtitle = (f"DISCO predicted each target's full-benchmark score from its outputs on "
                f"{facts['k']} of {facts['n_samples']} samples. Method {facts['method']}: "
                f"anchors by {facts['selection']}, metamodel {facts['metamodel']}.")
    page = render_html(f"DISCO report: {facts['name']}", subtitle, _cards(facts), rows,
                       _notes(result, rows), figures, timings, facts["failed"],
                       result.run.get("config", {}))
    path = run_dir.write_report(page, {"facts": {**facts, "timings_s": timings}, "models": rows,
                                       "anchor_curve": None if curve is None else curve["rows"]})
    if not (run_dir.path / PREDICTIONS_CSV).exists():
        run_dir.write_predictions(result.predictions, list(result.predictions[0]) if
                                  result.predictions else [])
    return path
