"""The dominance counts of examples/benchmarks/ (decile_dominance.py, dominated_targets.py) on
hand-checked outcomes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "benchmarks"))
import decile_dominance  # noqa: E402
import dominated_targets  # noqa: E402


def test_dominance_counts_weaker_models_right_wherever_the_target_is() -> None:
    right = np.array([[1, 1, 0],    # weaker 0: right wherever target 3 is
                      [1, 0, 1],    # weaker 1: misses target 3's second anchor
                      [1, 1, 1],    # weaker 2: right everywhere, dominates both targets
                      [1, 1, 0],    # target 3
                      [0, 0, 1]])   # target 4: dominated by weakers 1 and 2
    score = np.array([0.50, 0.40, 0.60, 0.70, 0.45])
    share, excess = decile_dominance.dominance(right, score, np.array([3, 4]),
                                               np.array([0, 1, 2]))
    assert share == 1.0
    # target 3 lies 0.70 - mean(0.50, 0.60) above, target 4 0.45 - mean(0.40, 0.60) below
    assert excess == pytest.approx(100 * ((0.70 - 0.55) + (0.45 - 0.50)) / 2)


def test_a_target_no_weaker_model_dominates_counts_in_the_share_only() -> None:
    right = np.array([[0, 1], [1, 0], [1, 1]])
    share, excess = decile_dominance.dominance(right, np.array([0.3, 0.4, 0.9]),
                                               np.array([2]), np.array([0, 1]))
    assert share == 0.0 and np.isnan(excess)


def test_deciles_split_the_models_by_score_with_edge_ties_above() -> None:
    score = np.arange(20) / 20
    deciles = decile_dominance.decile_members(score)
    assert [list(d) for d in deciles] == [[2 * i, 2 * i + 1] for i in range(10)]
    tied = decile_dominance.decile_members(np.array([0.1] * 5 + [0.2] * 5))
    assert sum(len(d) for d in tied) == 10 and len(tied[-1]) == 5


def test_dominated_targets_reads_each_targets_dominating_references() -> None:
    refs = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1]])
    targets = np.array([[1, 1, 0],     # dominated by references 0 and 2
                        [0, 1, 1]])    # dominated by reference 2 only
    count, excess, bias = dominated_targets.dominated_summary(
        refs, targets, ref_scores=np.array([0.5, 0.4, 0.6]),
        ref_predictions=np.array([0.55, 0.4, 0.7]), target_scores=np.array([0.7, 0.65]))
    assert count == 2
    assert excess == pytest.approx(100 * ((0.70 - 0.55) + (0.65 - 0.60)) / 2)
    assert bias == pytest.approx(100 * ((0.625 - 0.55) + (0.70 - 0.60)) / 2)
    none = dominated_targets.dominated_summary(refs[:2], np.array([[1, 1, 1]]), np.zeros(2),
                                               np.zeros(2), np.ones(1))
    assert none[0] == 0 and np.isnan(none[1]) and np.isnan(none[2])


def test_monotone_bound_reads_each_targets_weakest_dominating_reference() -> None:
    refs = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1]])
    targets = np.array([[1, 1, 0],     # dominated by references 0 (0.5) and 2 (0.6)
                        [0, 1, 1],     # dominated by reference 2 only, and below it
                        [1, 1, 1]])    # dominated by reference 2, 0.2 above it
    bound = dominated_targets.monotone_bound(refs, targets, np.array([0.5, 0.4, 0.6]),
                                             np.array([0.7, 0.55, 0.8]))
    assert bound == pytest.approx(100 * ((0.7 - 0.5) + 0.0 + (0.8 - 0.6)) / 3)
    undominated = dominated_targets.monotone_bound(refs[:2], np.array([[1, 1, 1]]),
                                                   np.array([0.5, 0.4]), np.array([0.9]))
    assert undominated == 0.0


def test_strongest_tenth_excess_compares_the_top_references_with_weaker_ones() -> None:
    scores = np.linspace(0.3, 0.7, 20)
    right = np.zeros((20, 4))
    right[:18, :2] = 1                  # the weaker 18 are right on anchors 0 and 1
    right[18:, 0] = 1                   # the strongest two only on anchor 0: all dominate them
    excess = dominated_targets.strongest_tenth_excess(right, scores)
    assert excess == pytest.approx(100 * (scores[18:].mean() - scores[:18].mean()))
