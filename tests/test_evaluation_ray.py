"""The evaluation protocol's cells as Ray tasks (one local Ray per test session; conftest.py)."""

from __future__ import annotations

import functools
import json
import sys
import time

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")

import disco_ray.distributed.evaluation as ray_evaluation  # noqa: E402
from disco_ray.cli import main  # noqa: E402
from disco_ray.distributed.evaluation import run_cells_on_ray  # noqa: E402
from disco_ray.evaluation import (PREDICTION_COLUMNS, Cell, evaluation_cells,  # noqa: E402
                                  held_out_predictions, predict_cell)
from disco_ray.io import write_outputs  # noqa: E402
from helpers import synthetic_population  # noqa: E402

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
pytestmark = pytest.mark.ray


def test_cells_on_ray_give_the_in_process_predictions(ray_session):
    """Same rows in the same order, same flags; scores equal up to floating-point summation
    order (a task runs its BLAS on one thread, this process on every core)."""
    outputs = synthetic_population(100, 60, with_probs=False)
    plan = (outputs, ["random_rf", "disco"], [10], ["random", "top"], 1)
    here = held_out_predictions(*plan, progress=False)
    on_ray = held_out_predictions(*plan, progress=False,
                                  runner=functools.partial(run_cells_on_ray, max_in_flight=2))
    assert len(on_ray) == 2 * (20 + 10)
    exact = ["split", "k", "method", "seed", "model_id", "true", "out_of_population",
             "at_frontier"]
    pd.testing.assert_frame_equal(on_ray[exact], here[exact])
    numbers = [c for c in PREDICTION_COLUMNS if c not in exact]
    assert np.abs(on_ray[numbers].to_numpy() - here[numbers].to_numpy()).max() < 1e-6


def _recording(folder):
    """A stand-in for `predict_cell` that notes when each cell starts and ends in `folder`, and
    fails for k = 500 (more anchors than samples) as the real one does."""
    def run(outputs, cell):
        (folder / f"start-{cell.position}").write_text(repr(time.time()))
        time.sleep(0.3)
        frame = predict_cell(outputs, cell)
        (folder / f"end-{cell.position}").write_text(repr(time.time()))
        return frame
    return run


def test_at_most_max_in_flight_cells_run_at_once(ray_session, tmp_path, monkeypatch):
    """With room for 2 tasks and a cap of 1, the cells still run one at a time."""
    monkeypatch.setattr(ray_evaluation, "predict_cell", _recording(tmp_path))
    outputs = synthetic_population(40, 20, with_probs=False)
    cells = evaluation_cells(outputs, ["random_direct"], [5], ["top"], 3)
    done = list(run_cells_on_ray(outputs, cells, max_in_flight=1))
    assert sorted(cell.position for cell, _ in done) == [0, 1, 2]
    spans = sorted((float((tmp_path / f"start-{i}").read_text()),
                    float((tmp_path / f"end-{i}").read_text())) for i in range(3))
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


def test_a_failing_cell_raises_its_own_error_and_stops_the_rest(ray_session, tmp_path,
                                                                monkeypatch):
    """A cell that fails in its task raises the original exception type, with its message;
    the cells not yet started never start."""
    monkeypatch.setattr(ray_evaluation, "predict_cell", _recording(tmp_path))
    outputs = synthetic_population(40, 20, with_probs=False)
    good = evaluation_cells(outputs, ["random_direct"], [5], ["top"], 2)
    bad = Cell(0, good[0].split, 500, "random_direct", 0)   # more anchors than samples
    cells = [bad, *(Cell(i + 1, c.split, c.k, c.method, c.seed) for i, c in enumerate(good))]
    with pytest.raises(ValueError, match="500"):
        list(run_cells_on_ray(outputs, cells, max_in_flight=1))
    time.sleep(1.0)   # time enough for a wrongly started cell to note its start
    assert sorted(p.name for p in tmp_path.iterdir()) == ["start-0"]


def test_cli_workers_run_the_cells_on_ray(ray_session, tmp_path, capsys, monkeypatch):
    """`evaluate --workers 2` joins the running Ray, runs its cells through the Ray runner with
    2 in flight, and prints the table the in-process run prints (the plain mean: no
    floating-point reordering)."""
    calls = []

    def spy(outputs, cells, max_in_flight):
        calls.append((len(cells), max_in_flight))
        yield from run_cells_on_ray(outputs, cells, max_in_flight)

    monkeypatch.setattr(ray_evaluation, "run_cells_on_ray", spy)
    path = tmp_path / "data.parquet"
    write_outputs(synthetic_population(120, 40, with_probs=False), path)
    args = ["evaluate", "--data", str(path), "--anchors", "5,10", "--seeds", "2",
            "--methods", "random_direct", "--json", "-q"]
    assert main(args) == 0
    serial = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert calls == []
    assert main([*args, "--workers", "2"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == serial
    assert calls == [(4, 2)] and len(serial) == 2 and ray_session.is_initialized()
