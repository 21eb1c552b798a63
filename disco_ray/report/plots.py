"""The report's figures, rendered to PNG bytes with matplotlib's Agg canvas (no pyplot state)."""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

TARGET = "#1f77b4"
OUT_OF_POPULATION = "#d62728"
AT_FRONTIER = "#e6a100"
REFERENCE = "#9e9e9e"
ANCHOR = "#ff7f0e"


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _percent(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else 100 * v for v in values], dtype=np.float64)


def _columns(rows: list[dict], *fields: str) -> list[np.ndarray]:
    """Per field, the rows' values in percent (None -> NaN)."""
    return [_percent([row.get(field) for row in rows]) for field in fields]


def _warnings(rows: list[dict]) -> np.ndarray:
    """Per row: "out of population", "at the frontier" or "target" (no warning)."""
    return np.array(["out of population" if row["out_of_population"] else
                     "at the frontier" if row.get("at_frontier") else "target" for row in rows])


def prediction_plot(predictions: list[dict], reference_scores: np.ndarray | None) -> bytes:
    """Predicted vs true score with 90% intervals (or intervals alone when no true scores)."""
    if any(p.get("true_score") is not None for p in predictions):
        return _scatter(predictions, reference_scores)
    return _intervals(predictions, reference_scores)


def _errorbars(ax: Axes, x: np.ndarray, y: np.ndarray, lower: np.ndarray,
               upper: np.ndarray, warnings: np.ndarray, horizontal: bool = False) -> None:
    for label, color in (("target", TARGET), ("at the frontier", AT_FRONTIER),
                         ("out of population", OUT_OF_POPULATION)):
        mask = warnings == label
        if not mask.any():
            continue
        err = np.vstack([y[mask] - lower[mask], upper[mask] - y[mask]])
        if horizontal:
            ax.errorbar(y[mask], x[mask], xerr=err, fmt="o", color=color, capsize=3, label=label)
        else:
            ax.errorbar(x[mask], y[mask], yerr=err, fmt="o", color=color, capsize=3, label=label)


def _free_side(x: float, y: float, xs: np.ndarray, ys: np.ndarray, reach: float = 12) -> int:
    """+1 (right) or -1 (left): the side of (x, y) with fewer points nearby, for a label."""
    near = np.abs(ys - y) < reach / 2
    right = np.sum(near & (xs > x) & (xs < x + reach))
    left = np.sum(near & (xs < x) & (xs > x - reach))
    return 1 if right <= left else -1


def _scatter(predictions: list[dict], reference_scores: np.ndarray | None) -> bytes:
    rows = [p for p in predictions if p.get("true_score") is not None]
    true, pred, lower, upper = _columns(rows, "true_score", "score", "lower", "upper")
    warnings = _warnings(rows)
    fig, ax = _figure(6.4, 5.6)
    if reference_scores is not None:
        ax.axvspan(100 * reference_scores.min(), 100 * reference_scores.max(), color=REFERENCE,
                   alpha=0.15, label="references' true-score range")
    _errorbars(ax, true, pred, lower, upper, warnings)
    for row, x, y in zip(rows, true, pred):
        if row["out_of_population"]:
            side = _free_side(x, y, true, pred)
            ax.annotate(row["model_id"], (x, y), textcoords="offset points", xytext=(8 * side, 4),
                        ha="left" if side > 0 else "right", fontsize=8, color=OUT_OF_POPULATION,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.8})
    span = np.concatenate([true, pred])
    low, high = max(np.floor(np.nanmin(span) - 5), -2), min(np.ceil(np.nanmax(span) + 5), 102)
    ax.plot([low, high], [low, high], "--", color="black", lw=1, label="y = x")
    ax.set(xlim=(low, high), ylim=(low, high), xlabel="true score on the full benchmark (%)",
           ylabel="predicted score (%)", title="Predicted vs true score (90% intervals)")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _intervals(predictions: list[dict], reference_scores: np.ndarray | None) -> bytes:
    order = sorted(predictions, key=lambda p: p["score"])
    pred, lower, upper = _columns(order, "score", "lower", "upper")
    warnings = _warnings(order)
    fig, ax = _figure(6.4, 1.2 + 0.35 * len(order))
    if reference_scores is not None:
        ax.axvspan(100 * reference_scores.min(), 100 * reference_scores.max(), color=REFERENCE,
                   alpha=0.15, label="references' score range")
    _errorbars(ax, np.arange(len(order)), pred, lower, upper, warnings, horizontal=True)
    ax.set_yticks(np.arange(len(order)), [p["model_id"] for p in order], fontsize=8)
    ax.set(xlabel="predicted score (%)", title="Predicted scores (90% intervals)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def population_figure(predictions: list[dict], reference_accuracy: np.ndarray,
                      reference_scores: np.ndarray) -> Figure:
    """Anchor accuracy against score: the references (their true scores) and each target (its
    prediction, 90% interval, true score when known). Lines mark the highest anchor accuracy
    (dashed) and the highest score (dotted) of any reference, two references in general; a
    target beyond either is extrapolated."""
    fig, ax = _figure(6.4, 5.2)
    ax.scatter(100 * reference_accuracy, 100 * reference_scores, s=10, color=REFERENCE,
               label="references (true score)")
    accuracy, pred, lower, upper, true = _columns(
        predictions, "anchor_accuracy", "score", "lower", "upper", "true_score")
    _errorbars(ax, accuracy, pred, lower, upper, _warnings(predictions))
    if np.isfinite(true).any():
        ax.scatter(accuracy, true, marker="x", color="black", zorder=3, label="target (true)")
    ax.axvline(100 * reference_accuracy.max(), linestyle="--", color="black", lw=1,
               label="highest reference anchor accuracy")
    ax.axhline(100 * reference_scores.max(), linestyle=":", color="black", lw=1,
               label="highest reference score")
    ax.set(xlabel="accuracy on the anchors (%)", ylabel="full-benchmark score (%)",
           title="Where the targets lie against the references")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def population_plot(predictions: list[dict], reference_accuracy: np.ndarray,
                    reference_scores: np.ndarray) -> bytes:
    """`population_figure` as PNG bytes."""
    return _png(population_figure(predictions, reference_accuracy, reference_scores))


def _k_axis(ax, ks: list[int]) -> None:
    """A log axis of the number of anchors, labelled at the k values only (no minor labels)."""
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()


def curve_plot(curve: pd.DataFrame, labels: dict[str, str], method: str, run_k: int) -> bytes:
    """MAE against the number of anchors, a line per method (`labels`: method -> legend), the
    run's own `method` drawn thick in black, its k marked."""
    fig, ax = _figure(6.4, 4.4)
    for name, rows in curve.groupby("method", sort=False):
        rows = rows.sort_values("k")
        style = ({"color": "black", "linewidth": 2.6, "zorder": 3} if name == method
                 else {"linewidth": 1.2, "alpha": 0.85})
        ax.errorbar(rows["k"], rows["mae_pp"], yerr=rows["mae_pp_std"], marker="o", capsize=3,
                    label=labels.get(name, name), **style)
    ax.axvline(run_k, color="grey", linestyle=":", linewidth=1, label=f"this run's k = {run_k}")
    _k_axis(ax, sorted(set(curve["k"]) | {run_k}))
    ax.set_ylim(bottom=0)
    ax.set(xlabel="number of anchors k", ylabel="MAE on held-out references (pp)",
           title="Error against the number of anchors")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def evaluation_figure(summary: pd.DataFrame, title: str = "") -> Figure:
    """`disco-ray evaluate`'s summary as a picture: a column per split, MAE (top row) and 90%
    interval coverage (bottom row, the [0.85, 0.95] band shaded) against k, a line per method;
    `disco*` methods drawn thick, with the coverage's 90% confidence interval as a bar where the
    summary has it (`evaluation_table`)."""
    splits = list(dict.fromkeys(summary["split"]))
    fig = Figure(figsize=(5.2 * len(splits), 7.6))
    axes = fig.subplots(2, len(splits), squeeze=False, sharex="col")
    ks = sorted(set(summary["k"]))
    for column, split in enumerate(splits):
        mae_ax, coverage_ax = axes[0, column], axes[1, column]
        shown = summary[summary["split"] == split]
        variants = [m for m in dict.fromkeys(shown["method"]) if m.startswith("disco")]
        for method, rows in shown.groupby("method", sort=False):
            rows = rows.sort_values("k")
            style = {"linewidth": 3.0, "zorder": 3} if method in variants else {
                "linewidth": 1.2, "alpha": 0.8}
            mae_ax.plot(rows["k"], rows["mae_pp"], marker="o", label=method, **style)
            [line] = coverage_ax.plot(rows["k"], rows["coverage90"], marker="o", label=method,
                                      **style)
            if method in variants and {"coverage90_lo", "coverage90_hi"} <= set(rows):
                side = 1.04 ** (variants.index(method) - (len(variants) - 1) / 2)   # apart
                coverage_ax.vlines(rows["k"] * side, rows["coverage90_lo"],
                                   rows["coverage90_hi"], color=line.get_color(), linewidth=2.5,
                                   alpha=0.7, zorder=2)
        coverage_ax.axhspan(0.85, 0.95, color=REFERENCE, alpha=0.2, label="0.85-0.95")
        mae_ax.set(title=f"split: {split}", ylabel="MAE on held-out models (pp)")
        mae_ax.set_ylim(bottom=0)
        coverage_ax.set(xlabel="number of anchors k", ylabel="90% interval coverage")
        coverage_ax.set_ylim(0, 1.02)
        for ax in (mae_ax, coverage_ax):
            _k_axis(ax, ks)
            ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:
        fig.suptitle(title)
    return fig


def evaluation_plot(summary: pd.DataFrame, title: str = "") -> bytes:
    """`evaluation_figure` as PNG bytes."""
    return _png(evaluation_figure(summary, title))


def disagreement_plot(scores: np.ndarray, anchor_mask: np.ndarray, score_name: str) -> bytes:
    """Histogram of per-sample disagreement with the anchors' share of each bin."""
    fig, ax = _figure(6.4, 4.0)
    bins = np.histogram_bin_edges(scores, bins=40)
    ax.hist(scores, bins=bins, color=REFERENCE, label=f"all samples ({len(scores)})")
    ax.hist(scores[anchor_mask], bins=bins, color=ANCHOR,
            label=f"anchors ({int(anchor_mask.sum())})")
    ax.set(xlabel=f"{score_name} over the reference models (higher = more disagreement)",
           ylabel="samples",
           title="Where the anchors lie in the disagreement distribution")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
