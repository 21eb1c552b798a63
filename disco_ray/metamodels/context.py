"""What metamodels learn from the reference models beyond their anchor features."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from disco_ray.outputs import OutputsError


@dataclass
class ReferenceContext:
    """Reference-wide data that some members fit on, passed to `fit(X, y, context=...)`.

    gp-IRT needs IRT item parameters of every sample, fitted on the references' outcomes over
    the whole benchmark; the anchor mean of clustered anchors needs their weights; both read
    right from wrong in a probability signature by the anchors' gold choices. A benchmark that
    was saved keeps only what prediction needs: `irt` and `mirt` (the gp-IRT setups) instead of
    `outcomes`.

    Attributes:
        anchors: the anchors' sample indices in the references' outputs.
        weights: the anchors' weights (clustered anchors: each stands for its cluster's share).
        gold: the anchors' gold choices, or None for 0/1 outcomes.
        has_probs: the features hold per-choice probabilities (then `gold` is required).
        mean_is_unbiased: the (weighted) anchor mean estimates any model's score without bias
            (the data is the whole benchmark and the anchors are random draws).
        seed: seeds the IRT fits.
        outcomes: [M, N] the references' outcomes over every sample (None once saved).
        irt: the gp-IRT setup (`irt.gp_irt_setup`) on the classic 1-D 2PL, computed from
            `outcomes` on first use.
        mirt: the same on the multidimensional IRT whose shape the references choose.
        irt_cache: holds `irt.fit_reference_irt`'s outputs under "irt" and "mirt" (independent
            of the anchors: one dict can be shared by the contexts of several anchor designs).
        source: where the references came from (for errors).
    """

    anchors: np.ndarray
    weights: np.ndarray | None = None
    gold: list[int] | None = None
    has_probs: bool = False
    mean_is_unbiased: bool = False
    seed: int = 0
    outcomes: np.ndarray | None = field(default=None, repr=False)
    irt: dict | None = field(default=None, repr=False)
    mirt: dict | None = field(default=None, repr=False)
    irt_cache: dict = field(default_factory=dict, repr=False)
    source: str = ""

    def irt_setup(self, multidim: bool = False) -> dict:
        """The gp-IRT setup of these anchors, fitted on the references only: on the classic
        1-D 2PL, or (`multidim`) on the multidimensional shape the references choose."""
        from disco_ray.irt import CLASSIC, MULTIDIM, fit_reference_irt, gp_irt_setup

        name = "mirt" if multidim else "irt"
        if getattr(self, name) is None:
            if self.outcomes is None:
                raise ValueError("the gp-IRT setup needs the references' outcomes over every "
                                 "sample. Fix: condense again")
            if name not in self.irt_cache:
                self.irt_cache[name] = fit_reference_irt(
                    self.outcomes, self.seed, MULTIDIM if multidim else (CLASSIC,))
            setattr(self, name, gp_irt_setup(self.outcomes, self.anchors, self.weights,
                                             self.seed, self.irt_cache[name]))
        return getattr(self, name)

    def anchor_gold(self) -> list[int] | None:
        """The anchors' gold choices, which tell right from wrong in a probability signature
        (None for 0/1 outcomes)."""
        if not self.has_probs:
            return None
        if self.gold is None:
            raise OutputsError(f"{self.source}: field 'gold' is missing; with per-choice "
                               "probabilities the IRT and anchor-mean metamodels need it to tell "
                               "which choice is right. Fix: add gold, leave probs out (correct "
                               "alone is enough), or use a method without them (e.g. jsd_rf)")
        return self.gold

    def anchor_weights(self) -> list[float] | None:
        """The anchors' weights as floats, or None (every anchor counts the same)."""
        return None if self.weights is None else np.asarray(self.weights, np.float64).tolist()


def no_context() -> ReferenceContext:
    """The context of a metamodel that reads nothing beyond its features."""
    return ReferenceContext(anchors=np.zeros(0, dtype=np.int64))
