"""Anchor designs and the settings of the offline phase.

An `AnchorDesign` says how anchors are drawn: `kind` (top-k by disagreement, stratified by
group, clustered, random), `score` (the disagreement score, or for clusters how each cluster's
anchor is picked) and `guiding` (how many reference models the disagreement is computed over).
`CondenseSettings` holds the candidate designs and metamodels that condensing chooses among by
cross-validation over the reference models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

KINDS = ("top", "stratified", "cluster", "random")
DISAGREEMENT_SCORES = ("pds", "jsd")
CLUSTER_PICKS = ("centroid", "random")
DESIGN_HELP = ("random, cluster-centroid, cluster-random, top-pds, top-jsd, stratified-pds or "
               "stratified-jsd; top/stratified may add @N to compute disagreement over N "
               "reference models drawn by the seed (e.g. top-jsd@20)")


@dataclass(frozen=True)
class AnchorDesign:
    """How anchors are drawn.

    Attributes:
        kind: `top` (the k samples the references disagree on most), `stratified` (top-k within
            each group, in proportion to its size), `cluster` (k-means over the samples'
            outcome vectors, one anchor per cluster, weighted by its size) or `random`.
        score: `pds` or `jsd` for `top` and `stratified`; `centroid` (the sample nearest the
            centre) or `random` (one drawn at random) for `cluster`; None for `random`.
        guiding: the number of reference models the disagreement is computed over (drawn by
            the seed; None: every reference). Only `top` and `stratified` read it.
    """

    kind: str
    score: str | None = None
    guiding: int | None = None

    def __post_init__(self) -> None:
        allowed = {"top": DISAGREEMENT_SCORES, "stratified": DISAGREEMENT_SCORES,
                   "cluster": CLUSTER_PICKS, "random": (None,)}
        if self.kind not in allowed or self.score not in allowed[self.kind]:
            raise ValueError(f"unknown anchor design {self.kind}-{self.score}. Fix: use "
                             f"{DESIGN_HELP}")
        if self.guiding is not None and (self.kind not in ("top", "stratified")
                                         or self.guiding < 2):
            raise ValueError(f"anchor design {self.name}: guiding={self.guiding}. Fix: a "
                             "guiding subset of at least 2 models, for top or stratified only")

    @property
    def name(self) -> str:
        """`random`, `top-jsd`, `cluster-centroid`, `stratified-pds@20`, ..."""
        base = self.kind if self.score is None else f"{self.kind}-{self.score}"
        return base if self.guiding is None else f"{base}@{self.guiding}"

    @property
    def by_disagreement(self) -> bool:
        """Whether the design reads disagreement scores."""
        return self.kind in ("top", "stratified")

    @property
    def unbiased(self) -> bool:
        """Whether the (weighted) anchor mean is design-unbiased for any model (random
        draws)."""
        return self.kind == "random" or (self.kind == "cluster" and self.score == "random")

    @classmethod
    def parse(cls, text: str) -> "AnchorDesign":
        """A design from its name (`top-jsd`, `cluster` = `cluster-centroid`, `top-jsd@20`)."""
        base, _, guiding = text.strip().partition("@")
        kind, _, score = base.partition("-")
        if kind == "cluster" and not score:
            score = "centroid"
        if guiding and not guiding.isdigit():
            raise ValueError(f"anchor design {text!r}: '@{guiding}' is not a number of models. "
                             f"Fix: use {DESIGN_HELP}")
        return cls(kind, score or None, int(guiding) if guiding else None)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "AnchorDesign":
        return cls(data["kind"], data.get("score"), data.get("guiding"))


@dataclass(frozen=True)
class CondenseSettings:
    """Every setting of the offline phase; tuples are candidates chosen by CV on references.

    Attributes:
        k: number of anchors.
        designs: candidate anchor designs. With several, a design whose disagreement score is
            degenerate on the references (PDS on 0/1 outcomes: most samples tie at the maximum)
            is skipped.
        metamodels: candidate metamodel specs (`metamodels.make_metamodel`).
        cv_folds: folds of the cross-validation over reference models.
        interval: coverage of the prediction intervals.
        seed: seeds the guiding subset, random selection, CV and the metamodel.
        nested_below: with fewer reference models than this, several designs are compared by
            a nested CV (each fold's models predicted by a benchmark condensed on the other
            folds, its anchors chosen there too): anchors chosen and validated on the same few
            models look better than they are. It costs `cv_folds` condenses per design; 0
            turns it off.
    """

    k: int = 100
    designs: tuple[AnchorDesign, ...] = (AnchorDesign("top", "pds"),)
    metamodels: tuple[dict, ...] = ({"regressor": "rf", "pca": 256},)
    cv_folds: int = 5
    interval: float = 0.9
    seed: int = 0
    nested_below: int = 100

    def to_json(self) -> dict:
        return {**asdict(self), "designs": [design.to_json() for design in self.designs]}

    @classmethod
    def from_json(cls, data: dict) -> "CondenseSettings":
        data = dict(data)
        data["designs"] = tuple(AnchorDesign.from_json(d) for d in data["designs"])
        data["metamodels"] = tuple(data["metamodels"])
        return cls(**data)
