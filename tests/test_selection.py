"""Anchor selection: top-k, stratified, random; k is checked."""

import numpy as np
import pytest

from disco_ray.selection import select_anchors, stratified_top_k, top_k


def test_top_k_picks_highest_scores():
    assert top_k(np.array([0.1, 0.9, 0.5, 0.7]), 2).tolist() == [1, 3]


def test_stratified_splits_evenly_over_groups():
    scores = np.array([9, 8, 7, 1, 2, 3], dtype=float)
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    chosen = stratified_top_k(scores, groups, 4)
    assert chosen.tolist() == [0, 1, 4, 5]


def test_random_is_seeded():
    a = select_anchors(100, 10, "random", seed=1)
    assert np.array_equal(a, select_anchors(100, 10, "random", seed=1))
    assert not np.array_equal(a, select_anchors(100, 10, "random", seed=2))


def test_k_larger_than_n_is_a_clear_error():
    with pytest.raises(ValueError, match="k=11 anchors requested but the data has 10 samples"):
        select_anchors(10, 11, "top", scores=np.zeros(10))
