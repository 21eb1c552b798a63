"""The evaluation protocol's cells as Ray tasks: one condense-and-predict per task, one CPU each.

`cell_runner` picks where an evaluation's cells run (this process, a local Ray, a cluster);
`held_out_predictions(..., runner=run_cells_on_ray)` runs them on the current Ray session. The
cells and their results are the core's.
"""

from __future__ import annotations

import contextlib
import importlib.util
from typing import Iterator, Sequence

import pandas as pd

from disco_ray.evaluation import Cell, CellRunner, predict_cell, run_cells_in_process
from disco_ray.outputs import ModelOutputs

# A task holds one CPU: the Random Forests inside a cell must not start a thread per core of
# the node (joblib sizes n_jobs=-1 by LOKY_MAX_CPU_COUNT; Ray already sets OMP_NUM_THREADS).
TASK_OPTIONS = {"num_cpus": 1, "runtime_env": {"env_vars": {"LOKY_MAX_CPU_COUNT": "1"}}}


@contextlib.contextmanager
def cell_runner(address: str | None, workers: int, quiet: bool) -> Iterator[CellRunner]:
    """Where the cells run: in this process, one after another (no `address`, `workers` 1), or
    as Ray tasks on the cluster at `address` or else on a local Ray with `workers` CPUs."""
    if not address and workers <= 1:
        yield run_cells_in_process
        return
    if importlib.util.find_spec("ray") is None:
        raise RuntimeError("more than one worker or a Ray address runs the cells on Ray, which "
                           "is not installed. Fix: pip install 'disco-ray[ray]'")
    from disco_ray.distributed.session import ray_session

    with ray_session(address, workers, quiet):
        yield run_cells_on_ray


def run_cells_on_ray(outputs: ModelOutputs,
                     cells: Sequence[Cell]) -> Iterator[tuple[Cell, pd.DataFrame]]:
    """A `CellRunner`: every cell as a Ray task, yielded as each finishes. The outputs go to
    the object store once; unfinished tasks are cancelled if the caller stops early or a cell
    fails."""
    import ray

    task = ray.remote(predict_cell).options(**TASK_OPTIONS)
    shared = ray.put(outputs)
    pending = {task.remote(shared, cell): cell for cell in cells}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            yield pending.pop(done[0]), ray.get(done[0])
    finally:
        for ref in pending:
            ray.cancel(ref)
