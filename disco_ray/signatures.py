"""Signatures: what a model's outputs on the anchors look like to the metamodel.

The feature matrix handed to metamodels is `[signature | anchor accuracy]`: a model's
probabilities (or outcomes) on the anchors, then its mean correctness on them as the last column.
"""

from __future__ import annotations

import numpy as np

from disco_ray.outputs import ModelOutputs


def anchor_features(outputs: ModelOutputs, anchor_index: np.ndarray) -> np.ndarray:
    """[M, d + 1] features: signature on the anchors, then accuracy on the anchors."""
    signature = outputs.signature(anchor_index)
    return np.hstack([signature, anchor_accuracy(outputs, anchor_index)[:, None]])


def anchor_accuracy(outputs: ModelOutputs, anchor_index: np.ndarray) -> np.ndarray:
    """[M] mean correctness on the anchors (missing outcomes count as wrong)."""
    return outputs.correct_filled()[:, anchor_index].mean(axis=1)


def split_features(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(signature [M, d], anchor accuracy [M]) from `anchor_features` output."""
    return features[:, :-1], features[:, -1]
