"""Metamodels: scikit-learn estimators from anchor features to a full-benchmark score.

`members` holds the estimators, `registry` their names and traits, `stack` DISCO's
`StackedMetamodel`, `build` the specs' front door (`make_metamodel`, `choose_metamodel`).
"""

from disco_ray.metamodels.build import (METAMODELS, ConformalRegressor, choose_metamodel,
                                        describe_metamodel, make_metamodel)
from disco_ray.metamodels.context import ReferenceContext
from disco_ray.metamodels.members import (REGRESSORS, AnchorMean, CosineNearest, GpIrtRegressor,
                                          HybridRegressor, SignatureRegressor, make_regressor,
                                          signature_correctness)
from disco_ray.metamodels.registry import MEMBERS, MemberKind, extrapolates, make_member
from disco_ray.metamodels.stack import (ROUTE_QUANTILES, StackedMetamodel, beyond_probability,
                                        mix_stacks)

__all__ = ["METAMODELS", "MEMBERS", "REGRESSORS", "ROUTE_QUANTILES", "AnchorMean",
           "ConformalRegressor", "CosineNearest", "GpIrtRegressor", "HybridRegressor",
           "MemberKind", "ReferenceContext", "SignatureRegressor", "StackedMetamodel",
           "beyond_probability", "choose_metamodel", "describe_metamodel", "extrapolates",
           "make_member", "make_metamodel", "make_regressor", "mix_stacks",
           "signature_correctness"]
