"""Item response theory: one- and multidimensional 2PL fits (`model`) and tinyBenchmarks'
gp-IRT on them (`gp`). Numpy and scipy only."""

from disco_ray.irt.gp import (CLASSIC, MULTIDIM, Shape, choose_shape, fit_items,
                              fit_reference_irt, full_items, gp_blend, gp_irt_predict,
                              gp_irt_setup, gp_lambda, irt_ability, irt_ability_sd,
                              pirt_estimate)
from disco_ray.irt.model import (ItemParams, expected_mean, fit_2pl, fit_ability, fit_mirt,
                                 information)

__all__ = ["CLASSIC", "MULTIDIM", "ItemParams", "Shape", "choose_shape", "expected_mean",
           "fit_2pl", "fit_ability", "fit_items", "fit_mirt", "fit_reference_irt", "full_items",
           "gp_blend", "gp_irt_predict", "gp_irt_setup", "gp_lambda", "information",
           "irt_ability", "irt_ability_sd", "pirt_estimate"]
