"""How far does each score decile lie above weaker models that answer the anchors as well?

A model *dominates* another on a set of anchors when it is right on every anchor the other gets
right. A predictor that never lowers its estimate for more right answers predicts a model no
higher than the models dominating it, so a model that lies far above its dominating models is
one no such predictor can reach from those anchors. This script fits nothing: for each of
`--draws` draws of k random anchors, it compares every model of the upper deciles (by full
score) with the models of the lower deciles that dominate it, and prints per decile the share
of models with at least one dominating model and how far above those models' mean full score
they lie (pp, mean over the dominated models), each averaged over the draws, with the range of
the excess over the draws. A `top` split (`disco_ray.evaluation.model_splits`) holds out the
strongest tenth, so its references end at decile 9: what decile 10 shows, they never see.

Usage:
    python examples/benchmarks/decile_dominance.py \
        --data ../shared/data/real/openllm_mmlu.npz ../shared/data/real/openllm_arc.npz \
        --ks 25 50 100 --draws 5

Never point it at the reserved data while developing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from disco_ray.io import read_outputs

N_DECILES = 10


def decile_members(score: np.ndarray) -> list[np.ndarray]:
    """Model indices of each score decile, weakest first; a score equal to a decile edge (a
    quantile of `score`) counts in the decile above it."""
    edges = np.quantile(score, np.arange(1, N_DECILES) / N_DECILES)
    decile = np.searchsorted(edges, score, side="right")
    return [np.flatnonzero(decile == d) for d in range(N_DECILES)]


def dominates(models: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """[models, targets] bool: the model is right on every anchor the target gets right (rows of
    0/1 outcomes on the same anchors)."""
    misses = (models < 0.5).astype(np.int32) @ (targets >= 0.5).T.astype(np.int32)
    return misses == 0


def dominating_means(models: np.ndarray, targets: np.ndarray, *values: np.ndarray
                     ) -> tuple[np.ndarray, list[np.ndarray]]:
    """(dominated, means): which targets some model dominates (`dominates`), and for each array
    of per-model `values`, its mean over each dominated target's dominating models."""
    dominating = dominates(models, targets)
    counts = dominating.sum(axis=0)
    dominated = counts > 0
    return dominated, [(v @ dominating)[dominated] / counts[dominated] for v in values]


def dominance(right: np.ndarray, score: np.ndarray, targets: np.ndarray, weaker: np.ndarray
              ) -> tuple[float, float]:
    """(share of `targets` dominated by some `weaker` model, their mean excess in pp).

    `right` is the [M, k] 0/1 matrix of outcomes on the anchors; the excess of a dominated
    target is its full score minus the mean full score of the weaker models dominating it.
    """
    dominated, (mean_score,) = dominating_means(right[weaker], right[targets], score[weaker])
    if not dominated.any():
        return 0.0, float("nan")
    return float(dominated.mean()), 100 * float(np.mean(score[targets][dominated] - mean_score))


def decile_table(correct: np.ndarray, score: np.ndarray, deciles: list[np.ndarray], k: int,
                 draws: int, first_decile: int) -> list[tuple[int, float, float, float, float]]:
    """Per decile from `first_decile` (1-based) of `deciles` (`decile_members(score)`):
    (decile, share, excess, min and max excess over the draws), on `draws` draws of k random
    anchors (seeds 0 .. draws-1)."""
    per_draw = np.array([[dominance(correct[:, anchors], score, deciles[d],
                                    np.concatenate(deciles[:d]))
                          for d in range(first_decile - 1, N_DECILES)]
                         for anchors in (np.random.default_rng(seed).choice(
                             correct.shape[1], size=k, replace=False) for seed in range(draws))])
    share, excess = per_draw[..., 0], per_draw[..., 1]
    return [(first_decile + i, float(share[:, i].mean()), float(np.nanmean(excess[:, i])),
             float(np.nanmin(excess[:, i])), float(np.nanmax(excess[:, i])))
            for i in range(share.shape[1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", required=True,
                        help="outcome files (.npz) with a full_score per model")
    parser.add_argument("--ks", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--first-decile", type=int, default=6, choices=range(2, N_DECILES + 1))
    args = parser.parse_args()
    print("| data | decile | scores (%) | k | dominated share | excess (pp) | excess range |\n"
          "|---|---|---|---|---|---|---|")
    for path in args.data:
        outputs = read_outputs(path)
        score, correct = outputs.scores(), outputs.correct_filled()
        deciles = decile_members(score)
        for k in args.ks:
            rows = decile_table(correct, score, deciles, k, args.draws, args.first_decile)
            for decile, share, excess, low, high in rows:
                members = score[deciles[decile - 1]]
                print(f"| {path.stem} | {decile} | {100 * members.min():.1f}-"
                      f"{100 * members.max():.1f} | {k} | {share:.2f} | {excess:+.2f} | "
                      f"{low:+.1f} to {high:+.1f} |")


if __name__ == "__main__":
    main()
