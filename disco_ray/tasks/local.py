"""Multiple-choice samples from local JSONL or Parquet files.

One record per sample, with fields:
  `id`                 unique sample id (string or integer),
  `context`            the prompt up to the answer (`question` is accepted as an alias),
  `choices`            list of continuations (lm-eval convention: each starts with a space),
  `gold`               index of the correct option,
  `group`              optional subject / category,
  `choice_contexts`    optional per-option contexts (Winogrande style); `choices` then holds the
                       one shared continuation,
  `inputs`             optional numeric array for classifier backends (`context` may then be
                       left out).
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from disco_ray.io.json_object import json_object
from disco_ray.tasks.base import MCSample, Metric, Task

FORMAT_HINT = "one record per sample with fields id, context, choices, gold (optional: group)"


class TaskFileError(ValueError):
    """A bad task file: the message names the file, the record, the field and the fix."""


def _fail(where: str, field: str, problem: str, fix: str) -> TaskFileError:
    return TaskFileError(f"{where}: field '{field}': {problem}. Fix: {fix}")


def load_local_task(path: str | Path, *, name: str | None = None, metric: Metric = "acc",
                    limit: int | None = None) -> Task:
    """Load a task from a `.jsonl` or `.parquet` file; the task name defaults to the file stem."""
    path = Path(path)
    if not path.is_file():
        raise TaskFileError(f"{path}: file not found. Fix: give the path of an existing "
                            ".jsonl or .parquet task file")
    samples, seen = [], {}
    for where, record in _records(path):
        if limit is not None and len(samples) >= limit:
            break
        sample = sample_from_record(record, where)
        if sample.sample_id in seen:
            raise _fail(where, "id", f"duplicate id '{sample.sample_id}' (first at "
                        f"{seen[sample.sample_id]})", "give every sample a unique id")
        seen[sample.sample_id] = where
        samples.append(sample)
    if not samples:
        raise TaskFileError(f"{path}: contains no samples. Fix: write {FORMAT_HINT}")
    return Task(name or path.stem, tuple(samples), metric)


def _records(path: Path) -> Iterator[tuple[str, dict]]:
    """(location, record) pairs; the location names the file and the line or row."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _jsonl_records(path)
    elif suffix == ".parquet":
        yield from _parquet_records(path)
    else:
        raise TaskFileError(f"{path}: unsupported file type '{suffix}'. Fix: use a .jsonl or "
                            f".parquet file with {FORMAT_HINT}")


def _jsonl_records(path: Path) -> Iterator[tuple[str, dict]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}: line {number}"
            yield where, json_object(line, where, f"write one JSON object per line: {FORMAT_HINT}",
                                     TaskFileError)


def _parquet_records(path: Path) -> Iterator[tuple[str, dict]]:
    import pyarrow.parquet as pq
    table = pq.read_table(path)
    for number, record in enumerate(table.to_pylist()):
        yield f"{path}: row {number}", {k: v for k, v in record.items() if v is not None}


def sample_from_record(record: dict[str, Any], where: str = "<record>") -> MCSample:
    """Validate one record and turn it into an MCSample; errors name `where` and the field."""
    if "id" not in record:
        raise _fail(where, "id", "is missing", "give every sample a unique id")
    choice_contexts = _string_list(record, "choice_contexts", where, required=False)
    inputs = _inputs(record, where)
    context = record.get("context", record.get("question"))
    if context is None:
        if choice_contexts is None and inputs is None:
            raise _fail(where, "context", "is missing", "add the prompt as 'context' (or "
                        "'question'), or per-option 'choice_contexts'")
        context = ""
    if not isinstance(context, str):
        raise _fail(where, "context", f"must be a string, got {type(context).__name__}",
                    "store the prompt as text")
    choices = _string_list(record, "choices", where, required=True)
    if choice_contexts is not None and len(choices) != 1:
        raise _fail(where, "choices", f"has {len(choices)} entries but 'choice_contexts' is "
                    "given", "with per-option contexts, give the one shared continuation as "
                    "'choices': [text]")
    n_options = len(choice_contexts) if choice_contexts is not None else len(choices)
    group = record.get("group")
    return MCSample(sample_id=str(record["id"]), context=context, choices=tuple(choices),
                    gold=_gold(record, n_options, where),
                    group=None if group is None else str(group),
                    choice_contexts=None if choice_contexts is None else tuple(choice_contexts),
                    inputs=inputs)


def _string_list(record: dict, field: str, where: str, *, required: bool) -> list[str] | None:
    value = record.get(field)
    if value is None:
        if required:
            raise _fail(where, field, "is missing", "give the options as a list of strings")
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, np.ndarray)):
        raise _fail(where, field, f"must be a list of strings, got {type(value).__name__}",
                    "give the options as a list of strings")
    items = list(value)
    if not items or not all(isinstance(item, str) for item in items):
        raise _fail(where, field, "must be a non-empty list of strings",
                    "give every option as text")
    return items


def _gold(record: dict, n_options: int, where: str) -> int:
    if "gold" not in record:
        raise _fail(where, "gold", "is missing", "give the index of the correct option")
    gold = record["gold"]
    if isinstance(gold, float) and gold.is_integer():
        gold = int(gold)
    if isinstance(gold, bool) or not isinstance(gold, numbers.Integral):
        raise _fail(where, "gold", f"must be an integer index, got {gold!r}",
                    "give the 0-based index of the correct option")
    if not 0 <= gold < n_options:
        raise _fail(where, "gold", f"is {gold}, out of range for {n_options} options",
                    f"use a 0-based index between 0 and {n_options - 1}")
    return int(gold)


def _inputs(record: dict, where: str) -> np.ndarray | None:
    value = record.get("inputs")
    if value is None:
        return None
    try:
        inputs = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise _fail(where, "inputs", "is not a numeric array",
                    "give classifier inputs as a (nested) list of numbers") from None
    if not np.all(np.isfinite(inputs)):
        raise _fail(where, "inputs", "has NaN or infinite values", "give finite numbers")
    return inputs
