"""Item response theory: a multidimensional 2PL (`model`) and tinyBenchmarks' gp-IRT on it
(`gp`). Numpy and scipy only."""

from disco_ray.irt.gp import (CANDIDATES, choose_shape, fit_reference_irt, full_items, gp_blend,
                              gp_irt_predict, gp_irt_setup, gp_lambda,
                              irt_expected_score, items_without, pirt_estimate, setup_without)
from disco_ray.irt.model import ItemParams, expected_mean, fit_ability, fit_mirt, information

__all__ = ["CANDIDATES", "ItemParams", "choose_shape", "expected_mean", "fit_ability", "fit_mirt",
           "fit_reference_irt", "full_items", "gp_blend", "gp_irt_predict", "gp_irt_setup",
           "gp_lambda", "information", "irt_expected_score", "items_without",
           "pirt_estimate", "setup_without"]
