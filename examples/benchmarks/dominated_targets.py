"""Held-out models that a reference answers the anchors at least as well as, per method.

On a split (`--split`, `disco_ray.evaluation.model_splits`), a held-out model is *dominated*
when some reference is right on every one of the method's anchors that the held-out model gets
right (`decile_dominance.dominates`). A predictor that never lowers a score for more right
answers predicts it no higher than those references, so how far it lies above them bounds what
the anchors can show. For each method and (data, k, seed) this script condenses the references
with the method's own settings and prints, in pp, means over the seeds:

  * `held-out`: the method's MAE on every held-out model;
  * `dominated`: how many held-out models a reference dominates;
  * `excess`: how far those models lie above the mean full score of their dominating
    references;
  * `bias`: the method's mean prediction of those dominating references (in-sample: the
    predictor the method ships) minus their mean score, averaged over the dominated models;
  * `bound`: the least MAE over every held-out model of any predictor that never lowers a score
    for more right answers and is exact on the references: it predicts a dominated model at
    most its weakest dominating reference's score (models no reference dominates count 0);
  * `refs' top excess`: the `excess` of the references' own strongest tenth over the weaker
    references that dominate them: what a validation inside the references sees of it.

Usage (from the repository root, with ../shared beside it; about 10 s a method and cell):
    python examples/benchmarks/dominated_targets.py \
        --data ../shared/data/real/openllm_mmlu.npz ../shared/data/real/openllm_arc.npz \
        --ks 25 50 100 --seeds 0 1 2 3 4 --methods disco gp_irt --split top

Never point it at the reserved data while developing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from decile_dominance import dominance, dominates, dominating_means
from split_cells import run_cells, split_models

from disco_ray.evaluation import SPLITS
from disco_ray.metamodels.stack import strongest_rows
from disco_ray.methods import method_settings
from disco_ray.outputs import ModelOutputs
from disco_ray.search import condense


def dominated_summary(right_refs: np.ndarray, right_targets: np.ndarray, ref_scores: np.ndarray,
                      ref_predictions: np.ndarray, target_scores: np.ndarray
                      ) -> tuple[int, float, float]:
    """(number of dominated targets, their mean excess, the bias on their dominating references),
    the last two in pp (NaN when none is dominated)."""
    hit, (mean_score, mean_prediction) = dominating_means(right_refs, right_targets,
                                                          ref_scores, ref_predictions)
    if not hit.any():
        return 0, float("nan"), float("nan")
    return (int(hit.sum()), 100 * float(np.mean(target_scores[hit] - mean_score)),
            100 * float(np.mean(mean_prediction - mean_score)))


def monotone_bound(right_refs: np.ndarray, right_targets: np.ndarray, ref_scores: np.ndarray,
                   target_scores: np.ndarray) -> float:
    """The least MAE (pp, over every target) of a predictor that never lowers a score for more
    right answers and is exact on the references: each dominated target lies at least as far
    above its weakest dominating reference's score."""
    weakest = np.where(dominates(right_refs, right_targets), ref_scores[:, None], np.inf).min(0)
    shortfall = np.where(np.isfinite(weakest), target_scores - weakest, 0.0)
    return 100 * float(np.mean(np.maximum(shortfall, 0.0)))


def strongest_tenth_excess(right_refs: np.ndarray, ref_scores: np.ndarray) -> float:
    """The mean excess (pp) of the references' strongest tenth (the rows the stack's
    extrapolation CV holds out) over the weaker references that dominate them (NaN when none is
    dominated)."""
    weaker, strongest = strongest_rows(ref_scores)
    return dominance(right_refs, ref_scores, strongest, weaker)[1]


def measure(outputs: ModelOutputs, split: str, method: str, k: int, seed: int) -> dict:
    """One row: the method's held-out MAE and its dominated-target summary on `split`."""
    references, held_out = split_models(outputs, split, seed)
    bench = condense(references, method_settings(method, k, seed))
    anchors = references.sample_index(bench.anchor_ids)
    predict = {name: np.array([p.score for p in bench.predict(models)])
               for name, models in (("refs", references), ("held_out", held_out))}
    right_refs = references.correct_filled()[:, anchors]
    right_held_out = held_out.correct_filled()[:, anchors]
    count, excess, bias = dominated_summary(right_refs, right_held_out, references.scores(),
                                            predict["refs"], held_out.scores())
    return {"k": k, "seed": seed, "method": method,
            "held-out": 100 * float(np.mean(np.abs(predict["held_out"] - held_out.scores()))),
            "dominated": count, "of": held_out.n_models, "excess": excess, "bias": bias,
            "bound": monotone_bound(right_refs, right_held_out, references.scores(),
                                    held_out.scores()),
            "refs' top excess": strongest_tenth_excess(right_refs, references.scores())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--ks", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=["disco", "gp_irt"])
    parser.add_argument("--split", choices=SPLITS, default="top")
    args = parser.parse_args()
    rows = run_cells(args.data, args.ks, args.seeds, lambda outputs, k, seed: [
        measure(outputs, args.split, method, k, seed) for method in args.methods])
    table = rows.groupby(["data", "k", "method"], sort=False)[
        ["held-out", "dominated", "of", "excess", "bias", "bound", "refs' top excess"]].mean()
    print(table.round(2).reset_index().to_markdown(index=False))


if __name__ == "__main__":
    main()
