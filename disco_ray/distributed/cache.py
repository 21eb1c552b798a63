"""Per-model output parts that double as a cache.

Each model's outputs are one Parquet part (`disco_ray.io` format) written atomically, so an
interrupted run leaves whole parts only. The part also stores a cache key (sha256 of the model
spec less its throughput options, the size and modification time of a local checkpoint's files,
the task name and metric, the content of the scored samples and the choice count); a rerun with
the same output directory reuses every part whose key still matches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from disco_ray.backends.base import STAGING_OPTIONS, ModelSpec
from disco_ray.backends.staging import file_safe, is_uri
from disco_ray.io import atomic_path, read_parquet
from disco_ray.io.parquet import outputs_table
from disco_ray.outputs import ModelOutputs, OutputsError
from disco_ray.tasks.base import Task

log = logging.getLogger(__name__)

CACHE_KEY = b"disco_ray_cache_key"
# options that change how fast or from where a model runs, not its outputs
THROUGHPUT_OPTIONS = ("batch_size", "max_num_batched_tokens", "gpu_memory_utilization",
                      "load_format", *STAGING_OPTIONS)


def samples_hash(task: Task) -> str:
    """sha256 of everything a backend sees of the task's samples, in order."""
    digest = hashlib.sha256()
    for s in task.samples:
        record = [s.sample_id, s.context, s.choices, s.choice_contexts, s.gold, s.group]
        digest.update(json.dumps(record).encode())
        if s.inputs is not None:
            digest.update(np.ascontiguousarray(s.inputs).tobytes())
    return digest.hexdigest()


def cache_key(spec: ModelSpec, task: Task, n_choices: int, task_digest: str | None = None) -> str:
    """The key of one model's outputs on `task` (padded to `n_choices` choices; `task_digest`:
    its `samples_hash`, when already computed). Options that change only how fast or from where
    a model runs (`THROUGHPUT_OPTIONS`) leave it unchanged; rewriting a local checkpoint's
    files changes it (`checkpoint_stamp`)."""
    options = {k: v for k, v in spec.options.items() if k not in THROUGHPUT_OPTIONS}
    record = {"spec": dataclasses.asdict(dataclasses.replace(spec, options=options)),
              "task": task.name, "metric": task.metric,
              "samples": task_digest or samples_hash(task), "n_choices": n_choices}
    if task.metric == "acc_norm":   # now divides by the length without the leading space, as
        record["acc_norm_length"] = "lm-eval"   # lm-eval does: outputs of the old rule rerun
    stamp = checkpoint_stamp(spec.path)
    if stamp is not None:   # absent for HF ids and URIs: their keys are as before
        record["checkpoint"] = stamp
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def checkpoint_stamp(path: str) -> list[tuple[str, int, int]] | None:
    """(file, size, mtime in ns) of every file of a local checkpoint (a file or a directory);
    None for a Hugging Face id, a URI, or a path this machine does not see."""
    root = Path(path)
    if is_uri(path) or not root.exists():
        return None
    files = [root] if root.is_file() else sorted(f for f in root.rglob("*") if f.is_file())
    stats = [f.stat() for f in files]
    return [(f.name if f == root else str(f.relative_to(root)), st.st_size, st.st_mtime_ns)
            for f, st in zip(files, stats)]


def part_name(model: str) -> str:
    """The file name of `model`'s part (`file_safe`)."""
    return f"{file_safe(model)}.parquet"


@dataclass(frozen=True)
class OutputCache:
    """A directory of per-model parts: `<directory>/<model>.parquet`."""

    directory: Path

    def part(self, model: str) -> Path:
        """The part file of `model` (`part_name`)."""
        return self.directory / part_name(model)

    def has(self, model: str, key: str) -> bool:
        """True if `model`'s part exists and was computed under `key`. A part that cannot be
        read (truncated, empty, not Parquet) counts as missing: it is computed again and
        replaced, with a warning naming it."""
        path = self.part(model)
        if not path.is_file():
            return False
        try:
            metadata = pq.read_schema(path).metadata or {}
        except (OSError, pa.ArrowException) as err:
            log.warning("%s: damaged (%s); model '%s' runs again and the file is replaced",
                        path, str(err).splitlines()[0][:200], model)
            return False
        return metadata.get(CACHE_KEY) == key.encode()

    def write(self, outputs: ModelOutputs, key: str) -> Path:
        """Write one model's outputs with its key, atomically."""
        table = outputs_table(outputs)
        table = table.replace_schema_metadata({**table.schema.metadata, CACHE_KEY: key.encode()})
        path = self.part(str(outputs.model_ids[0]))
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return path


def read_parts(paths: Sequence[Path]) -> ModelOutputs:
    """The outputs in `paths` (one or more models each, same samples) as one table."""
    parts = [read_parquet(Path(p)) for p in paths]
    if not parts:
        raise OutputsError("no output parts to read. Fix: evaluate at least one model")
    first = parts[0]
    for path, part in zip(paths[1:], parts[1:]):
        if not np.array_equal(part.sample_ids, first.sample_ids):
            raise OutputsError(f"{path}: field 'sample_ids' differs from {paths[0]}'s. Fix: "
                               "evaluate every model on the same samples")
    probs = np.concatenate([p.probs for p in parts]) if first.has_probs else None
    return ModelOutputs(np.concatenate([p.model_ids for p in parts]), first.sample_ids,
                        np.concatenate([p.correct for p in parts]), probs=probs, gold=first.gold,
                        groups=first.groups, source=str(Path(paths[0]).parent))
