"""Named method presets compared by `disco-ray evaluate`; `disco` is the recommended one.

Every preset is a function of k and seed returning `CondenseSettings`. Settings inside `disco`
that have several candidates are chosen by cross-validation over the reference models only.
"""

from __future__ import annotations

from dataclasses import replace
from disco_ray.condensed import CondenseSettings

RF = {"regressor": "rf", "pca": 256}
KNN = {"regressor": "knn", "pca": 256}

_BASE: dict[str, CondenseSettings] = {
    "random_direct": CondenseSettings(selection="random", metamodels=({"regressor": "direct"},)),
    "random_rf": CondenseSettings(selection="random", metamodels=(RF,)),
    "pds_knn": CondenseSettings(score="pds", metamodels=(KNN,)),
    "pds_rf": CondenseSettings(score="pds", metamodels=(RF,)),
    "jsd_knn": CondenseSettings(score="jsd", metamodels=(KNN,)),
    "jsd_rf": CondenseSettings(score="jsd", metamodels=(RF,)),
    "disco": CondenseSettings(
        score="pds",
        metamodels=(RF, {"regressor": "ridge", "pca": 256, "with_accuracy": True},
                    {"regressor": "rf", "pca": 256, "with_accuracy": True, "residual": True},
                    KNN)),
}

METHODS: tuple[str, ...] = tuple(_BASE)
DEFAULT_METHOD = "disco"


def method_settings(name: str, k: int, seed: int = 0) -> CondenseSettings:
    """The settings of method `name` for k anchors and a seed."""
    if name not in _BASE:
        raise ValueError(f"unknown method '{name}'. Fix: use one of {', '.join(METHODS)}")
    return replace(_BASE[name], k=k, seed=seed)

