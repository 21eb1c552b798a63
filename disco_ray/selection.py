"""Anchor selection: top-k by score, stratified by group, random, or clustered; always seeded.

`cluster` is tinyBenchmarks' anchor-corr: k-means on the items' embeddings (their correctness
columns over the reference models), anchor = the item nearest each centroid, weight = the
cluster's share of the items.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

SelectionKind = Literal["top", "stratified", "random", "cluster"]


def _check_k(k: int, n: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"k={k} anchors requested but the data has {n} samples. "
                         f"Fix: choose k between 1 and {n}")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The k highest-scoring samples; ties broken by position (stable)."""
    _check_k(k, len(scores))
    return np.sort(np.argsort(-np.asarray(scores), kind="stable")[:k])


def random_k(n: int, k: int, seed: int) -> np.ndarray:
    """k samples drawn uniformly without replacement."""
    _check_k(k, n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def stratified_top_k(scores: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """k samples split evenly over groups (remainder to the groups with the best next score)."""
    _check_k(k, len(scores))
    labels, inverse = np.unique(groups, return_inverse=True)
    ranked = [np.flatnonzero(inverse == g)[np.argsort(-scores[inverse == g], kind="stable")]
              for g in range(len(labels))]
    quota = np.array([min(len(r), k // len(labels)) for r in ranked])
    while quota.sum() < k:
        open_groups = [g for g, r in enumerate(ranked) if quota[g] < len(r)]
        best = max(open_groups, key=lambda g: (scores[ranked[g][quota[g]]], -g))
        quota[best] += 1
    return np.sort(np.concatenate([r[:q] for r, q in zip(ranked, quota)]))


def select_anchors(n_samples: int, k: int, kind: SelectionKind, scores: np.ndarray | None = None,
                   seed: int = 0, groups: np.ndarray | None = None) -> np.ndarray:
    """Indices of k anchors by `kind`; `scores` is needed by every kind but random."""
    if kind == "random":
        return random_k(n_samples, k, seed)
    if scores is None:
        raise ValueError(f"selection '{kind}' needs disagreement scores")
    if kind == "top":
        return top_k(scores, k)
    if kind == "stratified":
        if groups is None:
            raise ValueError("stratified selection needs groups (subjects) for every sample. "
                             "Fix: give `groups` in the outputs or use a top design (e.g. top-jsd)")
        return stratified_top_k(np.asarray(scores), groups, k)
    raise ValueError(f"unknown selection '{kind}'. Fix: use top, stratified, random or cluster "
                     "(cluster: `cluster_k`)")


def cluster_k(embedding: np.ndarray, k: int, seed: int,
              pick: str = "centroid") -> tuple[np.ndarray, np.ndarray]:
    """(anchors, weights): k-means on [N, d] item embeddings; per cluster the item nearest the
    centroid (`pick="centroid"`, tinyBenchmarks) or one drawn at random (`pick="random"`: the
    weighted anchor mean is then a stratified-sampling estimate, unbiased for any model).

    Weights are cluster sizes / N, aligned with the (sorted) anchors; they sum to 1.
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    embedding = np.asarray(embedding, dtype=np.float64)
    n = len(embedding)
    _check_k(k, n)
    if k == n:
        return np.arange(n), np.full(n, 1.0 / n)
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: more thrash on small, busy machines. Fewer distinct items than k is
    # fine (an empty cluster takes the nearest free item below), so KMeans's
    # ConvergenceWarning about it is not for the user.
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(embedding)
    distance = ((embedding[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1) \
        if n * k * embedding.shape[1] < 5e7 else km.transform(embedding) ** 2
    chosen, taken = [], np.zeros(n, dtype=bool)
    sizes = np.bincount(km.labels_, minlength=k).astype(np.float64)
    rng = np.random.default_rng(seed)
    for c in np.argsort(-sizes, kind="stable"):          # big clusters choose first
        order = np.argsort(distance[:, c], kind="stable")
        if pick == "random":
            members = np.flatnonzero(km.labels_ == c)
            order = rng.permutation(members) if len(members) else order
        item = next(i for i in order if not taken[i])
        taken[item] = True
        chosen.append((item, sizes[c]))
    chosen.sort()
    anchors = np.array([i for i, _ in chosen], dtype=np.int64)
    weights = np.array([w for _, w in chosen]) / n
    return anchors, weights / weights.sum()
