"""Multiple-choice tasks: local files or standard benchmarks, one front door."""

from __future__ import annotations

from pathlib import Path

from disco_ray.tasks.base import MCSample, Metric, Task

LOCAL_SUFFIXES = (".jsonl", ".parquet")
BENCHMARKS = ("mmlu", "hellaswag", "arc_challenge", "winogrande")

__all__ = ["BENCHMARKS", "MCSample", "Metric", "Task", "load_task"]


def load_task(name_or_path: str | Path, split: str | None = None, limit: int | None = None,
              metric: Metric | None = None) -> Task:
    """Load a task from a local `.jsonl`/`.parquet` file or by benchmark name.

    Args:
        name_or_path: a file path, or one of `BENCHMARKS` (loaded through HF `datasets`).
        split: dataset split for a benchmark (default: the one lm-eval scores); not used for
            local files.
        limit: keep only the first `limit` samples.
        metric: `acc` or `acc_norm`; defaults to `acc` for files and to lm-eval's headline
            metric for benchmarks (acc_norm for HellaSwag and ARC).
    """
    if metric not in (None, "acc", "acc_norm"):
        raise ValueError(f"task '{name_or_path}': metric '{metric}' is unknown. "
                         "Fix: use 'acc' or 'acc_norm'")
    text = str(name_or_path)
    if text.lower().endswith(LOCAL_SUFFIXES) or Path(text).is_file():
        from disco_ray.tasks.local import load_local_task
        return load_local_task(text, metric=metric or "acc", limit=limit)
    if text.lower() in BENCHMARKS:
        from disco_ray.tasks.hf import load_hf_task
        return load_hf_task(text.lower(), split=split, limit=limit, metric=metric)
    raise ValueError(f"task '{text}' is neither a local task file nor a known benchmark. "
                     f"Fix: give a path ending in {' or '.join(LOCAL_SUFFIXES)}, or one of "
                     f"{', '.join(BENCHMARKS)}")
