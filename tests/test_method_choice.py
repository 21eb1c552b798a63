"""The whole-method choice (examples/benchmarks/method_choice.py): gp-IRT as a one-member stack
under `disco`'s validation error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import synthetic_population

from disco_ray.evaluation import Cell, model_splits, predict_cell

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "benchmarks"))
import method_choice  # noqa: E402


def test_the_multidimensional_candidate_predicts_what_gp_irt_predicts() -> None:
    outputs = synthetic_population(120, 40, seed=3, with_probs=False)
    rows = pd.DataFrame(method_choice.measure(outputs, "top", 10, 0)).set_index("candidate")
    assert list(rows.index) == list(method_choice.CANDIDATES)
    assert rows["validation"].gt(0).all() and rows["extrapolation CV"].gt(0).all()
    split = next(model_splits(outputs, "top", 1))
    gp_irt = predict_cell(outputs, Cell(0, split, 10, "gp_irt", 0))
    error = gp_irt["score"] - gp_irt["true"]
    assert rows.loc["gp-IRT, multidimensional", "held-out"] == pytest.approx(
        100 * np.abs(error).mean(), abs=1e-9)
    bias = rows.loc["gp-IRT, multidimensional", "bias"]
    assert bias == pytest.approx(100 * error.mean(), abs=1e-9)


def test_summary_counts_the_seeds_each_candidate_is_chosen_in() -> None:
    rows = pd.DataFrame([{"data": "d", "split": "top", "k": 25, "seed": seed, "candidate": name,
                          "validation": value, "extrapolation CV": 1.0, "held-out": 2.0,
                          "bias": -1.0}
                         for seed, values in enumerate([(1.0, 2.0), (3.0, 2.0), (1.5, 2.5)])
                         for name, value in zip(("disco", "gp"), values)])
    table = method_choice.summary(rows).reset_index().set_index("candidate")
    assert table["chosen (seeds)"].to_dict() == {"disco": 2, "gp": 1}
    assert table.loc["disco", "validation"] == pytest.approx(round(5.5 / 3, 2))
