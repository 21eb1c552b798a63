"""The evaluation protocol's cells as Ray tasks: one condense-and-predict per task, one CPU each.

`cell_runner` picks where an evaluation's cells run (this process, a local Ray, a cluster);
`held_out_predictions(..., runner=...)` takes what it yields. The cells and their results are
the core's.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import itertools
from typing import Iterator, Sequence

import pandas as pd

from disco_ray.evaluation import Cell, CellRunner, predict_cell, run_cells_in_process
from disco_ray.outputs import ModelOutputs

# A task holds one CPU: the Random Forests inside a cell must not start a thread per core of
# the node (joblib sizes n_jobs=-1 by LOKY_MAX_CPU_COUNT; Ray already sets OMP_NUM_THREADS).
TASK_OPTIONS = {"num_cpus": 1, "runtime_env": {"env_vars": {"LOKY_MAX_CPU_COUNT": "1"}}}


@contextlib.contextmanager
def cell_runner(address: str | None, workers: int, quiet: bool) -> Iterator[CellRunner]:
    """Where the cells run. `workers` 1: in this process, one after another (`address` must be
    None). More: at most `workers` cells at once as Ray tasks, on the cluster at `address`, else
    on a local Ray with `workers` CPUs (a Ray session already open is used as it is)."""
    if workers <= 1:
        if address:
            raise ValueError(f"Ray address {address!r} given with one worker, which runs the "
                             "cells here. Fix: add --workers N, the cells to run at once")
        yield run_cells_in_process
        return
    if importlib.util.find_spec("ray") is None:
        raise RuntimeError(f"--workers {workers} runs the cells on Ray, which is not installed. "
                           "Fix: pip install 'disco-ray[ray]', or --workers 1")
    from disco_ray.distributed.session import ray_session

    with ray_session(address, workers, quiet):
        yield functools.partial(run_cells_on_ray, max_in_flight=workers)


def run_cells_on_ray(outputs: ModelOutputs, cells: Sequence[Cell],
                     max_in_flight: int) -> Iterator[tuple[Cell, pd.DataFrame]]:
    """A `CellRunner` (with `max_in_flight` bound): the cells as Ray tasks, at most
    `max_in_flight` submitted at a time, yielded as each finishes. The outputs go to the object
    store once. If the caller stops early or a cell fails, the tasks in flight are cancelled and
    the rest never start.

    The cap is what keeps a cluster's autoscaler on CPU nodes: it prefers them for CPU-only
    tasks, but demand beyond what its CPU node types can hold goes to GPU node types."""
    import ray

    task = ray.remote(predict_cell).options(**TASK_OPTIONS)
    shared = ray.put(outputs)
    todo = iter(cells)
    pending: dict = {}
    try:
        while True:
            for cell in itertools.islice(todo, max_in_flight - len(pending)):
                pending[task.remote(shared, cell)] = cell
            if not pending:
                return
            done, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(done[0])
            yield cell, ray.get(done[0])
    finally:
        for ref in pending:
            ray.cancel(ref)
