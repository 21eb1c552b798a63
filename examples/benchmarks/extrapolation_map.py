"""Can the references tell how the full score continues beyond them? (the `top` split)

Every method maps what a target's anchors reveal to the full-benchmark score through a relation
learned on the reference models; beyond the strongest reference that relation is extrapolated.
This script removes anchor noise altogether: it takes each model's accuracy over every sample of
the data file (what a perfect estimate from the anchors would give) and maps it to the full
score by a line fitted on the references, either on all of them (q = 0) or only on those whose
accuracy lies above its quantile q (the local slope at the references' top). It prints the
line's MAE, per q, for three ways of predicting models stronger than the training models:

  * `held-out top 10%`: the real held-out models of the `top` split, from every reference;
  * `refs: top 10% from rest`: the references' own strongest 10% from the other references
    (what any choice made on the references alone can see);
  * `refs: top 10% from lower half`: the same from the weaker half only (a larger jump);

with `jump`, the median test model's score minus the best training model's, and draws the
models with the global line and the local line that the references prefer.

Usage:
    python examples/benchmarks/extrapolation_map.py --data-dir ../shared/data/real \
        --datasets openllm_mmlu,openllm_arc --out examples/benchmarks/extrapolation_map.png

Never point it at the reserved data while developing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from disco_ray.evaluation import model_splits
from disco_ray.io import read_outputs
from disco_ray.io.atomic import atomic_path

QUANTILES = (0.0, 0.5, 0.7, 0.9)


def fit_line(acc: np.ndarray, score: np.ndarray, train: np.ndarray, q: float) -> np.ndarray:
    """(slope, intercept) of score ~ acc over the training models with acc above its q-quantile."""
    keep = train[acc[train] >= np.quantile(acc[train], q)]
    return np.polyfit(acc[keep], score[keep], 1)


def line_errors(acc: np.ndarray, score: np.ndarray, train: np.ndarray, test: np.ndarray
                ) -> list[float]:
    """MAE (pp) on `test` of the line fitted on `train`, for each q of `QUANTILES`."""
    return [100 * float(np.mean(np.abs(np.polyval(fit_line(acc, score, train, q), acc[test])
                                       - score[test]))) for q in QUANTILES]


def protocols(score: np.ndarray, refs: np.ndarray, held_out: np.ndarray
              ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (training models, test models)}: the real split and two nested in the references."""
    ranked = refs[np.argsort(score[refs], kind="stable")]
    n_top = max(2, int(round(0.1 * len(refs))))
    return {"held-out top 10%": (refs, held_out),
            "refs: top 10% from rest": (ranked[:-n_top], ranked[-n_top:]),
            "refs: top 10% from lower half": (ranked[:len(ranked) // 2], ranked[-n_top:])}


def draw(ax, name: str, acc: np.ndarray, score: np.ndarray, refs: np.ndarray,
         held_out: np.ndarray, local_q: float) -> None:
    """The references and held-out models, with the global line and the preferred local one."""
    ax.scatter(100 * acc[refs], 100 * score[refs], s=4, color="#9e9e9e", label="references")
    ax.scatter(100 * acc[held_out], 100 * score[held_out], s=6, color="#d62728",
               label="held-out top 10%")
    grid = np.linspace(acc.min(), acc.max(), 50)
    for q, style in ((0.0, "-"), (local_q, "--")):
        line = fit_line(acc, score, refs, q)
        ax.plot(100 * grid, 100 * np.polyval(line, grid), style, color="black",
                label=f"line on references above q = {q:g}")
    ax.set_title(name)
    ax.set_xlabel("accuracy over every sample in the file (%)")
    ax.set_ylabel("full-benchmark score (%)")
    ax.legend(fontsize=7, loc="upper left")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--datasets", default="openllm_mmlu,openllm_arc")
    parser.add_argument("--out", type=Path,
                        default=Path("examples/benchmarks/extrapolation_map.png"))
    args = parser.parse_args()
    names = args.datasets.split(",")
    fig = Figure(figsize=(5.5 * len(names), 4.5))
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    print("| data | predicting | jump (pp) | " + " | ".join(f"MAE q = {q:g}" for q in QUANTILES)
          + " | lowest at |\n|" + "---|" * (len(QUANTILES) + 4))
    for name, ax in zip(names, axes):
        outputs = read_outputs(args.data_dir / f"{name}.npz")
        score, acc = outputs.scores(), outputs.correct_filled().mean(axis=1)
        split = next(model_splits(outputs, "top", 1))
        chosen = {}
        for label, (train, test) in protocols(score, split.references, split.held_out).items():
            errors = line_errors(acc, score, train, test)
            chosen[label] = QUANTILES[int(np.argmin(errors))]
            jump = 100 * (np.median(score[test]) - score[train].max())
            print(f"| {name} | {label} | {jump:.1f} | "
                  + " | ".join(f"{e:.2f}" for e in errors) + f" | q = {chosen[label]:g} |")
        # the local line the references prefer (q = 0.5 for contrast when they prefer q = 0)
        draw(ax, name, acc, score, split.references, split.held_out,
             chosen["refs: top 10% from rest"] or QUANTILES[1])
    fig.tight_layout()
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


if __name__ == "__main__":
    main()
