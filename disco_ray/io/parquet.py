"""The project's own Parquet format: one row per model, sample-level fields in the metadata.

Rows: `model_id` (string), `correct` (list<float32>, N), `probs` (list<float32>, N*C, or null),
`full_score` (float64 or null). Schema metadata key `disco_ray` holds JSON with `format_version`,
`sample_ids`, `gold`, `groups`, `n_choices` and, for outputs read from lm-eval logs,
`lm_eval_metric` (the metric they were read with) and `full_score_definition` (what their full
scores are). A directory of such files (one part per model, as the Ray pipeline writes them)
reads as one table; every part must cover the same samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from disco_ray.io.atomic import atomic_path
from disco_ray.io.json_object import json_object
from disco_ray.outputs import ModelOutputs, OutputsError

FORMAT_VERSION = 1
META_KEY = b"disco_ray"
COLUMNS = ("model_id", "correct", "probs", "full_score")
# Kept from `ModelOutputs.meta` when set (absent otherwise: parts written before them match).
META_FIELDS = ("lm_eval_metric", "full_score_definition")


def outputs_table(outputs: ModelOutputs) -> pa.Table:
    """The Arrow table (with metadata) of `outputs`."""
    m, n = outputs.n_models, outputs.n_samples
    probs = None if outputs.probs is None else outputs.probs.reshape(m, -1)
    columns = {
        "model_id": pa.array(outputs.model_ids.tolist(), pa.string()),
        "correct": pa.array(list(outputs.correct), pa.list_(pa.float32())),
        "probs": pa.array([None] * m if probs is None else list(probs), pa.list_(pa.float32())),
        "full_score": pa.array([None] * m if outputs.full_score is None
                               else outputs.full_score, pa.float64()),
    }
    meta = {
        "format_version": FORMAT_VERSION,
        "sample_ids": outputs.sample_ids.tolist(),
        "gold": None if outputs.gold is None else outputs.gold.tolist(),
        "groups": None if outputs.groups is None else outputs.groups.tolist(),
        "n_choices": None if outputs.probs is None else int(outputs.probs.shape[2]),
        "n_samples": n,
    }
    meta.update({key: outputs.meta[key] for key in META_FIELDS if outputs.meta.get(key)})
    return pa.table(columns).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def write_parquet(outputs: ModelOutputs, path: str | Path) -> Path:
    """Write `outputs` to one Parquet file, atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(outputs_table(outputs), tmp)
    return Path(path)


def read_parquet(path: str | Path) -> ModelOutputs:
    """Read a Parquet file or a directory of per-model parts."""
    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    parts = [_read_part(f) for f in files]
    if not parts:
        raise OutputsError(f"{path}: no .parquet parts found. Fix: point at the outputs folder")
    meta = parts[0][1]
    for f, (_, part_meta) in zip(files[1:], parts[1:]):
        differ = sorted(k for k in meta.keys() | part_meta.keys()
                        if meta.get(k) != part_meta.get(k))
        if differ:
            raise OutputsError(
                f"{f}: field(s) {', '.join(differ)} differ from {files[0].name}'s. Fix: every "
                "model must be evaluated on the same samples, the same way; re-run it so")
    return _outputs(pa.concat_tables([table for table, _ in parts]), meta, str(path))


def _read_part(path: Path) -> tuple[pa.Table, dict]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise OutputsError(f"{path}: not a readable Parquet file ({err}). "
                           "Fix: re-create it with disco-ray") from err
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise OutputsError(f"{path}: column(s) {', '.join(missing)} missing (it has "
                           f"{', '.join(table.column_names)}). Fix: write the file with "
                           "disco_ray.io.write_outputs")
    return table, parse_meta(path, (table.schema.metadata or {}).get(META_KEY))


def parse_meta(path: Path, raw: bytes | None) -> dict:
    """The sample-level metadata of a part, checked for presence and format version."""
    if raw is None:
        raise OutputsError(f"{path}: schema metadata 'disco_ray' is missing. Fix: write the file "
                           "with disco_ray.io.write_outputs")
    meta = json_object(raw, f"{path}: schema metadata 'disco_ray'",
                       "write the file with disco_ray.io.write_outputs")
    if meta.get("format_version") != FORMAT_VERSION:
        raise OutputsError(f"{path}: field 'format_version' is {meta.get('format_version')}, this "
                           f"disco-ray reads {FORMAT_VERSION}. Fix: re-write it with this version")
    missing = [key for key in ("sample_ids", "n_samples") if key not in meta]
    if missing:
        raise OutputsError(f"{path}: schema metadata 'disco_ray' lacks field(s) "
                           f"{', '.join(missing)}. Fix: write the file with "
                           "disco_ray.io.write_outputs")
    for key, optional in (("n_samples", False), ("n_choices", True)):
        value = meta.get(key)
        if not (optional and value is None) and (type(value) is not int or value < 1):
            raise OutputsError(f"{path}: schema metadata 'disco_ray' field '{key}' is "
                               f"{value!r} ({type(value).__name__}), not a whole number >= 1. "
                               "Fix: write the file with disco_ray.io.write_outputs")
    return meta


def _outputs(table: pa.Table, meta: dict, source: str) -> ModelOutputs:
    n = meta["n_samples"]
    m = table.num_rows
    correct = _matrix(table.column("correct"), (m, n), source, "correct")
    probs = None
    if meta.get("n_choices"):
        probs = _matrix(table.column("probs"), (m, n, meta["n_choices"]), source, "probs")
    scores = table.column("full_score")
    if 0 < scores.null_count < m:
        raise OutputsError(f"{source}: field 'full_score' is null for {scores.null_count} of {m} "
                           "models. Fix: give every model's full-benchmark score, or none (then "
                           "scores are computed on these samples)")
    full_score = None if scores.null_count else scores.to_numpy().astype(np.float64)
    return ModelOutputs(table.column("model_id").to_pylist(), meta["sample_ids"], correct,
                        probs=probs, gold=meta.get("gold"), groups=meta.get("groups"),
                        full_score=full_score, source=source,
                        meta={key: meta[key] for key in META_FIELDS if meta.get(key)})


def _matrix(column: pa.ChunkedArray, shape: tuple[int, ...], source: str, name: str) -> np.ndarray:
    if column.null_count:
        raise OutputsError(f"{source}: field '{name}' is null for some models. "
                           "Fix: give every model the same fields")
    flat = pa.concat_arrays([c.flatten() for c in column.chunks]).to_numpy(zero_copy_only=False)
    if flat.size != int(np.prod(shape)):
        raise OutputsError(f"{source}: field '{name}' has {flat.size} values, expected "
                           f"{int(np.prod(shape))} for shape {shape}. Fix: every model needs one "
                           "value per sample (and choice)")
    return flat.reshape(shape).astype(np.float32)
