"""A small task and slow linear classifiers for the cluster tests (`backend: classifier`).

The cluster's worker "nodes" import this module by name (the tests put tests/ on their
PYTHONPATH). A classifier's outputs depend on its seed only; `delay` makes each scoring call
take that long, and `trace` (a directory) gets one file per call in progress,
`<pid>.scoring`, holding the node id and pid of the actor process, so that a test can kill
that process, or its node, while it scores.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from disco_ray.tasks.base import MCSample, Task

DIM, N_CHOICES = 8, 4
TRUTH = np.random.default_rng(12345).normal(size=(DIM, N_CHOICES))


def task(n_samples: int = 60) -> Task:
    """`n_samples` 4-way questions over 8 input features; gold is the truth's best class."""
    inputs = np.random.default_rng(7).normal(size=(n_samples, DIM))
    gold = (inputs @ TRUTH).argmax(axis=1)
    return Task("cluster-test", tuple(
        MCSample(f"q{i}", "", tuple("ABCD"), int(g), inputs=x.astype(np.float32))
        for i, (x, g) in enumerate(zip(inputs, gold))))


class SlowLinear:
    """Softmax of a noisy copy of the truth's weights; the noise depends on the seed."""

    def __init__(self, seed: int, delay: float, trace: str | None) -> None:
        rng = np.random.default_rng(seed)
        self.weights = TRUTH * (0.2 + 0.15 * (seed % 7)) + rng.normal(size=TRUTH.shape)
        self.delay, self.trace = delay, trace

    def predict_proba(self, inputs: np.ndarray) -> np.ndarray:
        marker = Path(self.trace) / f"{os.getpid()}.scoring" if self.trace else None
        if marker is not None:
            import ray

            node = ray.get_runtime_context().get_node_id()
            marker.write_text(json.dumps({"pid": os.getpid(), "node_id": node}))
        time.sleep(self.delay)
        if marker is not None:
            marker.unlink(missing_ok=True)
        logits = inputs.astype(np.float64) @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)


def classifier(seed: int, delay: float = 0.0, trace: str | None = None) -> SlowLinear:
    """The factory a config's `path: cluster_models:classifier` names."""
    return SlowLinear(seed, delay, trace)
