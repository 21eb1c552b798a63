"""Named method presets compared by `disco-ray evaluate`; `disco` is the recommended one.

Every preset is a function of k and seed returning `CondenseSettings`. Settings inside `disco`
that have several candidates are chosen by cross-validation over the reference models only.

Baselines: `random_direct` (plain mean on random anchors), `random_rf` (random anchors +
signature + RF), `gp_irt` (tinyBenchmarks: anchor-corr clustered anchors + gp-IRT on a
multidimensional 2PL whose dimension and prior the references choose per anchor set, mapped to
the full score by a linear fit on the references), `random_gp_irt` (random anchors + the same
gp-IRT), and the paper's DISCO variants (`pds`/`jsd` x `knn`/`rf`).

`disco`: anchors chosen among JSD top-k, PDS top-k (skipped where degenerate, i.e. on 0/1
outcomes), clustered and random by the stack's validation error on the references (out-of-fold
errors pooled with an extrapolation CV that predicts the strongest references from the others;
with fewer than 100 references, by a nested CV that chooses each fold's anchors without it);
metamodel = convex stack (weights fitted on out-of-fold predictions) of the anchor mean, gp-IRT
and a linear map of the IRT ability (both on the classic 1-D 2PL), ridge on the signature, ridge
+ RF on its residual, kNN, and RF on the signature and the anchor accuracy.
Targets beyond the references move toward an extrapolating prediction (a second stack of the
anchor mean and the IRT estimates, weighted on the extrapolation CV) by their probability of
lying above a quantile of the reference scores chosen on that same pooled error (that
prediction against the IRT posterior spread of the target's anchors), all the way when their
anchor accuracy exceeds every reference's; a target more likely above than not gets an interval
calibrated on the extrapolation CV. Targets weaker than every reference keep the in-population
stack (flagged, with a widened interval).

`disco_frontier`: `disco` with the extrapolation CV counting as much as the in-range
cross-validation when choosing the anchors and the route (`disco` pools them by size, so the
strongest references weigh ~1/11), and a hard route: a target takes the extrapolating prediction
exactly when it lies above the chosen quantile. For targets expected to be well beyond every
reference (new checkpoints past the references' frontier); it gives up some in-range accuracy
and some accuracy just above the references' edge for it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from disco_ray.design import AnchorDesign, CondenseSettings

RF = {"regressor": "rf", "pca": 256}
KNN = {"regressor": "knn", "pca": 256}
GP_IRT = {"regressor": "gp_irt"}
GP_MIRT = {"regressor": "gp_irt", "multidim": True}
THETA = {"regressor": "gp_irt", "feature": "theta"}
RIDGE = {"regressor": "ridge", "pca": 256, "with_accuracy": True}
HYBRID = {"regressor": "hybrid", "pca": 256}
DIRECT = {"regressor": "direct"}
RF_ACC = {**RF, "with_accuracy": True}
STACK = {"regressor": "stack",
         "members": [DIRECT, GP_IRT, THETA, RIDGE, HYBRID, KNN, RF_ACC]}
FRONTIER_STACK = {**STACK, "extrapolation_weight": 0.5, "soft_route": False}

RANDOM = (AnchorDesign("random"),)
TOP_PDS, TOP_JSD = AnchorDesign("top", "pds"), AnchorDesign("top", "jsd")
DISCO_DESIGNS = (TOP_JSD, TOP_PDS, AnchorDesign("cluster", "centroid"),
                 AnchorDesign("cluster", "random"), AnchorDesign("random"))

_BASE: dict[str, CondenseSettings] = {
    "random_direct": CondenseSettings(designs=RANDOM, metamodels=(DIRECT,)),
    "random_rf": CondenseSettings(designs=RANDOM, metamodels=(RF,)),
    "gp_irt": CondenseSettings(designs=(AnchorDesign("cluster", "centroid"),),
                               metamodels=(GP_MIRT,)),
    "random_gp_irt": CondenseSettings(designs=RANDOM, metamodels=(GP_MIRT,)),
    "pds_knn": CondenseSettings(designs=(TOP_PDS,), metamodels=(KNN,)),
    "pds_rf": CondenseSettings(designs=(TOP_PDS,), metamodels=(RF,)),
    "jsd_knn": CondenseSettings(designs=(TOP_JSD,), metamodels=(KNN,)),
    "jsd_rf": CondenseSettings(designs=(TOP_JSD,), metamodels=(RF,)),
    "disco": CondenseSettings(designs=DISCO_DESIGNS, metamodels=(STACK,)),
}
_BASE["disco_frontier"] = replace(_BASE["disco"], metamodels=(FRONTIER_STACK,))

METHODS: tuple[str, ...] = tuple(_BASE)
DEFAULT_METHOD = "disco"


def method_settings(name: str, k: int, seed: int = 0,
                    designs: Sequence[AnchorDesign] = ()) -> CondenseSettings:
    """The settings of method `name` for k anchors and a seed; `designs`, when given, replace
    the method's candidate anchor designs."""
    if name not in _BASE:
        raise ValueError(f"unknown method '{name}'. Fix: use one of {', '.join(METHODS)}")
    settings = replace(_BASE[name], k=k, seed=seed)
    return replace(settings, designs=tuple(designs)) if designs else settings
