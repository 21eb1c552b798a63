"""The evaluation protocol's cells as Ray tasks (one local Ray per test session; conftest.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ray")

from disco_ray.cli import main  # noqa: E402
from disco_ray.distributed.evaluation import run_cells_on_ray  # noqa: E402
from disco_ray.evaluation import (PREDICTION_COLUMNS, Cell, evaluation_cells,  # noqa: E402
                                  held_out_predictions)
from disco_ray.io import write_outputs  # noqa: E402
from helpers import synthetic_population  # noqa: E402

pytestmark = pytest.mark.ray


def test_cells_on_ray_give_the_in_process_predictions(ray_session):
    """Same rows in the same order, same flags; scores equal up to floating-point summation
    order (a task runs its BLAS on one thread, this process on every core)."""
    outputs = synthetic_population(100, 60, with_probs=False)
    plan = (outputs, ["random_rf", "disco"], [10], ["random", "top"], 1)
    here = held_out_predictions(*plan, progress=False)
    on_ray = held_out_predictions(*plan, progress=False, runner=run_cells_on_ray)
    assert len(on_ray) == 2 * (20 + 10)
    exact = ["split", "k", "method", "seed", "model_id", "true", "out_of_population",
             "at_frontier"]
    pd.testing.assert_frame_equal(on_ray[exact], here[exact])
    numbers = [c for c in PREDICTION_COLUMNS if c not in exact]
    assert np.abs(on_ray[numbers].to_numpy() - here[numbers].to_numpy()).max() < 1e-6


def test_a_failing_cell_raises_its_own_error(ray_session):
    """A cell that fails in its task raises the original exception type, with its message."""
    outputs = synthetic_population(40, 20, with_probs=False)
    good = evaluation_cells(outputs, ["random_direct"], [5], ["top"], 1)[0]
    bad = Cell(1, good.split, 500, "random_direct", 0)   # more anchors than samples
    with pytest.raises(ValueError, match="500"):
        list(run_cells_on_ray(outputs, [good, bad]))


def test_cli_workers_run_the_cells_on_ray(ray_session, tmp_path, capsys):
    """`evaluate --workers 2` joins the running Ray and prints the table the serial run prints
    (the plain mean: no floating-point reordering)."""
    path = tmp_path / "data.parquet"
    write_outputs(synthetic_population(120, 40, with_probs=False), path)
    args = ["evaluate", "--data", str(path), "--anchors", "5,10", "--seeds", "2",
            "--methods", "random_direct", "--json", "-q"]
    assert main(args) == 0
    serial = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main([*args, "--workers", "2"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == serial
    assert len(serial) == 2 and ray_session.is_initialized()
