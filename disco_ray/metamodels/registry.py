"""The registry of metamodel members: each name's estimator and its traits.

A member spec is a dict naming a registered member under `regressor`, with its constructor
arguments beside it, e.g. `{"regressor": "ridge", "pca": 256, "with_accuracy": True}`. Adding or
changing a member is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from disco_ray.metamodels.members import (AnchorMean, GpIrtRegressor, HybridRegressor, Member,
                                          SignatureRegressor)


@dataclass(frozen=True)
class MemberKind:
    """A registered member.

    Attributes:
        build: (constructor arguments, seed) -> an unfitted member.
        extrapolates: it can predict beyond the references' scores (a model of each item or of
            the anchors, not of the reference population); DISCO's out-of-population stack
            uses only such members.
        cost: `cheap`, or `forest` (Random Forests: left out of the stand-in stack that compares
            anchor designs).
    """

    build: Callable[[dict, int], Member]
    extrapolates: bool
    cost: str = "cheap"


def _signature(regressor: str) -> Callable[[dict, int], Member]:
    return lambda options, seed: SignatureRegressor(regressor=regressor, seed=seed, **options)


MEMBERS: dict[str, MemberKind] = {
    "direct": MemberKind(lambda options, seed: AnchorMean(**options), extrapolates=True),
    "gp_irt": MemberKind(lambda options, seed: GpIrtRegressor(**options), extrapolates=True),
    "hybrid": MemberKind(lambda options, seed: HybridRegressor(seed=seed, **options),
                         extrapolates=False, cost="forest"),
    "rf": MemberKind(_signature("rf"), extrapolates=False, cost="forest"),
    "knn": MemberKind(_signature("knn"), extrapolates=False),
    # a ridge on a saturating 0/1 signature does not extrapolate: it saturates with the anchors
    "ridge": MemberKind(_signature("ridge"), extrapolates=False),
}


def member_kind(spec: dict) -> MemberKind:
    """The registered member a spec names, with a clear error for an unknown one."""
    name = spec.get("regressor", "rf")
    if name not in MEMBERS:
        raise ValueError(f"unknown metamodel '{name}' in the spec {spec}. Fix: set 'regressor' "
                         f"to one of {', '.join([*MEMBERS, 'stack'])}")
    return MEMBERS[name]


def make_member(spec: dict, seed: int) -> Member:
    """An unfitted member from its spec."""
    options = {key: value for key, value in spec.items() if key != "regressor"}
    return member_kind(spec).build(options, seed)


def extrapolates(spec: dict) -> bool:
    """Whether a member can predict beyond the references' scores (`MemberKind.extrapolates`)."""
    return member_kind(spec).extrapolates
