"""The per-model table and the run's headline numbers, as data and as plain text."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from disco_ray.io.run import REPORT_HTML, RunRecord, read_run

FRONTIER_NOTE = ("90% interval reaches above the strongest reference's score: if the model is "
                 "stronger than every reference, its score is likely under-predicted")
FLAG = "OUT OF POPULATION"
FRONTIER = "AT FRONTIER"


def model_rows(predictions: list[dict]) -> list[dict]:
    """One row per target: scores in %, error = predicted - true in pp (None without truth)."""
    rows = []
    for p in predictions:
        true = p.get("true_score")
        rows.append({
            "model": p["model_id"], "predicted": 100 * p["score"], "lower": 100 * p["lower"],
            "upper": 100 * p["upper"], "true": None if true is None else 100 * true,
            "error": None if true is None else 100 * (p["score"] - true),
            "anchor_accuracy": 100 * p["anchor_accuracy"],
            "out_of_population": bool(p["out_of_population"]), "reason": p.get("reason") or "",
            "at_frontier": bool(p.get("at_frontier", False))})
    return rows


def warning(row: dict) -> str:
    """The row's flag: FLAG, FRONTIER or ''."""
    return FLAG if row["out_of_population"] else FRONTIER if row["at_frontier"] else ""


def accuracy_summary(rows: list[dict]) -> dict | None:
    """MAE (pp) over targets with true scores, in population too, and interval coverage."""
    known = [r for r in rows if r["true"] is not None]
    if not known:
        return None
    inside = [r for r in known if not r["out_of_population"]]
    covered = sum(r["lower"] <= r["true"] <= r["upper"] for r in known)
    return {"n": len(known), "mae_pp": float(np.mean([abs(r["error"]) for r in known])),
            "n_in_population": len(inside),
            "mae_in_population_pp": float(np.mean([abs(r["error"]) for r in inside]))
            if inside else None,
            "covered": int(covered)}


def accuracy_line(summary: dict | None) -> str:
    """'MAE 2.1 pp on 10 targets with true scores (...)', or '' without true scores."""
    if summary is None:
        return ""
    within = ""
    if summary["mae_in_population_pp"] is not None and summary["n_in_population"] < summary["n"]:
        within = (f", {summary['mae_in_population_pp']:.1f} pp on the "
                  f"{summary['n_in_population']} in population")
    return (f"MAE {summary['mae_pp']:.1f} pp on {summary['n']} targets with true scores{within};"
            f" {summary['covered']}/{summary['n']} true scores inside their 90% interval")


def cost_line(run: dict) -> str:
    """The share of a full evaluation that the targets cost."""
    share = run.get("cost_share")
    if share is None:
        return "Cost: no targets were predicted"
    return (f"Cost: {100 * share:.1f}% of a full evaluation of every target ({run.get('k')} of "
            f"{run.get('n_samples')} samples per target)")


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def text_table(rows: list[dict]) -> list[str]:
    """Fixed-width lines: model, predicted, 90% interval, true, error (these two only when some
    row has a true score), flag."""
    width = max([len("model")] + [len(r["model"]) for r in rows])
    truth = any(r["true"] is not None for r in rows)
    lines = [f"{'model':<{width}}  {'predicted':>9}  {'90% interval':>16}  "
             + (f"{'true':>7}  {'error':>6}  " if truth else "") + "flag"]
    for r in rows:
        interval = f"[{r['lower']:.1f}, {r['upper']:.1f}]"
        known = (f"{_fmt(r['true'], '.1f', '%'):>7}  {_fmt(r['error'], '+.1f'):>6}  "
                 if truth else "")
        lines.append(f"{r['model']:<{width}}  {_fmt(r['predicted'], '.1f', '%'):>9}  "
                     f"{interval:>16}  {known}{warning(r)}".rstrip())
    return lines


def warning_lines(rows: list[dict]) -> list[str]:
    """Below the table: why each flagged target is out of population, and which targets are at
    the frontier (nothing when no target is warned)."""
    lines = []
    flagged = [r for r in rows if r["out_of_population"]]
    if flagged:
        lines += ["", "Out of population (prediction less reliable, interval widened):"]
        lines += [f"  {r['model']}: {r['reason']}" for r in flagged]
    frontier = [r["model"] for r in rows if r["at_frontier"]]
    if frontier:
        lines += ["", *textwrap.wrap(f"At the frontier ({FRONTIER_NOTE}):", 100),
                  f"  {', '.join(frontier)}"]
    return lines


def summary_lines(result: RunRecord) -> list[str]:
    """The plain-text summary of a run (see `summary_table`)."""
    rows = model_rows(result.predictions)
    lines = text_table(rows) + warning_lines(rows)
    lines.append("")
    accuracy = accuracy_line(accuracy_summary(rows))
    if accuracy:
        lines.append(accuracy)
    lines.append(cost_line(result.run))
    if result.run.get("failed"):
        lines.append(f"Failed models: {', '.join(result.run['failed'])} (see run.json)")
    report = result.output_dir / REPORT_HTML
    if report.is_file():
        lines.append(f"Report: {report}")
    return lines


def summary_table(output_dir: str | Path) -> str:
    """Plain-text table of a finished run for the terminal: scores in %, errors in pp."""
    return "\n".join(summary_lines(read_run(output_dir)))


# (header, what the column shows) of `evaluation_text`, in order; `disco-ray evaluate --help`
EVALUATION_COLUMNS = (
    ("split", "how the models were split into references and held-out models"),
    ("k", "number of anchors"),
    ("method", "method preset (disco_ray.methods)"),
    ("n", "held-out models per seed"),
    ("MAE±sd", "mean absolute error of the predicted score, in percentage points, mean over "
               "seeds ± its standard deviation over seeds"),
    ("max", "largest absolute error (pp)"),
    ("rho", "Spearman rank correlation of predicted and true scores"),
    ("cov90", "share of true scores inside their 90% interval"),
    ("covCI", "90% confidence interval of that coverage (Wilson, over held-out models)"),
    ("width", "mean width of the 90% interval (pp)"),
    ("ood", "share of held-out models flagged out of population"),
    ("front", "share warned at the frontier (interval reaches above every reference)"),
    ("gap±se", "disco* rows: MAE minus the best baseline's (pp) ± the paired standard error"),
    ("best", "disco* rows: that best baseline (the lowest MAE among methods not named disco*)"),
)


def evaluation_text(table) -> str:
    """`disco-ray evaluate`'s table as fixed-width text, at most 120 characters wide for the
    presets and splits (every column of `table` stays in its CSV and JSON forms)."""
    def number(name: str, spec: str):
        return lambda row: "" if _missing(row.get(name)) else f"{row[name]:{spec}}"

    def plus_minus(name: str, spread: str, spec: str):
        return lambda row: "" if _missing(row.get(name)) else f"{row[name]:{spec}}" + (
            "" if _missing(row.get(spread)) else f"±{row[spread]:.2f}")

    cells = {"split": lambda row: str(row["split"]), "k": number("k", "d"),
             "method": lambda row: str(row["method"]), "n": number("n_held_out", ".0f"),
             "MAE±sd": plus_minus("mae_pp", "mae_pp_std", ".2f"),
             "max": number("max_error_pp", ".1f"), "rho": number("spearman", ".2f"),
             "cov90": number("coverage90", ".2f"),
             "covCI": lambda row: "" if _missing(row.get("coverage90_lo")) else
             f"{row['coverage90_lo']:.2f}-{row['coverage90_hi']:.2f}",
             "width": number("width90_pp", ".1f"), "ood": number("ood_rate", ".2f"),
             "front": number("frontier_rate", ".2f"),
             "gap±se": plus_minus("gap_pp", "gap_se_pp", "+.2f"),
             "best": lambda row: "" if _missing(row.get("best_baseline")) else
             str(row["best_baseline"])}
    rows = table.to_dict(orient="records")
    columns = [(header, [cells[header](row) for row in rows]) for header, _ in EVALUATION_COLUMNS]
    columns = [(header, values) for header, values in columns if any(values)]
    left = {"split", "method", "best"}
    widths = [max(len(header), *map(len, values)) for header, values in columns]
    lines = [[header for header, _ in columns]] + [list(r) for r in zip(*(v for _, v in columns))]
    return "\n".join(" ".join(text.ljust(w) if header in left else text.rjust(w)
                              for text, w, (header, _) in zip(line, widths, columns)).rstrip()
                     for line in lines)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))
