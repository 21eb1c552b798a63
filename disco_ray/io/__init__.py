"""Readers and writers of model outputs: shared .npz, the project's Parquet, lm-eval logs."""

from __future__ import annotations

from pathlib import Path

from disco_ray.io.atomic import atomic_path
from disco_ray.io.lm_eval import LmEvalMetric, lm_eval_samples, read_lm_eval
from disco_ray.io.npz import read_npz
from disco_ray.io.parquet import read_parquet, write_parquet
from disco_ray.outputs import ModelOutputs, OutputsError

__all__ = ["atomic_path", "read_outputs", "write_outputs", "read_npz", "read_parquet",
           "write_parquet", "read_lm_eval", "lm_eval_samples"]


def read_outputs(path: str | Path, task: str | None = None,
                 metric: LmEvalMetric = "acc") -> ModelOutputs:
    """Read model outputs from an `.npz`, a Parquet file or directory of parts, or lm-eval logs.

    `task` (a task-name prefix) and `metric` (`acc` / `acc_norm`) apply to lm-eval logs only.
    """
    path = Path(path)
    if not path.exists():
        raise OutputsError(f"{path}: file not found. Fix: check the path")
    if path.suffix == ".npz":
        return read_npz(path)
    if path.suffix == ".parquet" or (path.is_dir() and any(path.glob("*.parquet"))):
        return read_parquet(path)
    if path.suffix == ".jsonl" or (path.is_dir() and any(path.rglob("samples_*.jsonl"))):
        return read_lm_eval(path, task=task, metric=metric)
    raise OutputsError(
        f"{path}: unknown file type '{path.suffix or 'directory'}'. Fix: give a .npz file, a "
        ".parquet file or directory of parts (disco-ray format), or lm-eval --log_samples output "
        "(samples_<task>_*.jsonl)")


def write_outputs(outputs: ModelOutputs, path: str | Path) -> Path:
    """Write outputs in the project's Parquet format (atomically) to a `.parquet` path."""
    path = Path(path)
    if path.suffix != ".parquet":
        raise ValueError(f"{path}: write_outputs writes Parquet, but the name ends in "
                         f"'{path.suffix}'. Fix: name the file <name>.parquet")
    return write_parquet(outputs, path)
