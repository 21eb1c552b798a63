"""Shared by the scripts that condense every (data file, k, seed) cell of a split themselves
(`method_choice.py`, `dominated_targets.py`): the cell's models and the loop over the cells."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from disco_ray.evaluation import model_splits
from disco_ray.io import read_outputs
from disco_ray.outputs import ModelOutputs


def split_models(outputs: ModelOutputs, split: str, seed: int
                 ) -> tuple[ModelOutputs, ModelOutputs]:
    """(references, held-out models) of `disco_ray.evaluation.model_splits`' split at `seed`."""
    cut = list(model_splits(outputs, split, seed + 1))[seed]
    return outputs.take_models(cut.references), outputs.take_models(cut.held_out)


def run_cells(paths: Sequence[Path], ks: Sequence[int], seeds: Sequence[int],
              measure: Callable[[ModelOutputs, int, int], list[dict]]) -> pd.DataFrame:
    """The rows of `measure(outputs, k, seed)` over every file, k and seed, each cell's rows
    printed as they come (with a `data` column, the file's stem)."""
    rows: list[dict] = []
    for path in paths:
        outputs = read_outputs(path)
        for k in ks:
            for seed in seeds:
                cell = [{"data": path.stem, **row} for row in measure(outputs, k, seed)]
                print(pd.DataFrame(cell).round(2).to_string(index=False), flush=True)
                rows += cell
    return pd.DataFrame(rows)
