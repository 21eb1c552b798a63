"""Reader of lm-evaluation-harness `--log_samples` output.

lm-eval writes, per model, `<output_path>/<model>/samples_<task>_<date>.jsonl` (one line per doc:
`doc_id`, `target`, `arguments` (per option `{"arg_0": context, "arg_1": continuation}`),
`filtered_resps` (per option `["<loglikelihood>", "<is_greedy>"]`), and the per-sample metrics
such as `acc`, `acc_norm`) beside `results_<date>.json`. Probabilities are the softmax over the
per-option log-likelihoods (for `acc_norm` divided by the choice's length in characters, without
the leading space, as lm-eval counts it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.special import softmax

from disco_ray.io.json_object import json_object
from disco_ray.outputs import ModelOutputs, OutputsError
from disco_ray.tasks.base import completion_length

LmEvalMetric = Literal["acc", "acc_norm"]
log = logging.getLogger(__name__)


def read_lm_eval(path: str | Path, task: str | None = None,
                 metric: LmEvalMetric = "acc") -> ModelOutputs:
    """Read one model's samples file, or a directory with one sub-directory per model.

    Sample ids are `<task>/<doc_id>`; with several tasks (e.g. MMLU's 57 subtasks) each task is a
    group and the full score is the mean over groups. `task` restricts to task names starting
    with it.
    """
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.rglob("samples_*.jsonl"))
    if task:
        files = [f for f in files if _task_name(f).startswith(task)]
    if not files:
        raise OutputsError(f"{path}: no samples_<task>_*.jsonl files"
                           f"{f' for task {task!r}' if task else ''}. Fix: run lm_eval with "
                           "--log_samples --output_path and point at that folder")
    by_model: dict[str, dict[str, Path]] = {}
    for f in files:   # sorted: a folder's later run (its timestamp) comes later
        tasks = by_model.setdefault(f.parent.name if path.is_dir() else f.stem, {})
        earlier = tasks.get(_task_name(f))
        if earlier is not None and earlier.parent != f.parent:
            raise OutputsError(f"{path}: {earlier} and {f} log the same task for model "
                               f"{f.parent.name!r}. Fix: keep one run per model (folder names "
                               "are model ids), or point at one run's folder")
        if earlier is not None:
            log.warning("%s: task %s was logged again; reading the later run %s", f.parent,
                        _task_name(f), f.name)
        tasks[_task_name(f)] = f
    records = {model: _read_model(tasks, metric) for model, tasks in by_model.items()}
    return _assemble(records, str(path), metric)


def lm_eval_samples(sample_ids: Iterable[str]) -> dict[str, list[int]]:
    """lm-eval's `--samples` selection, `{task: [doc_id, ...]}`, for sample ids `<task>/<doc_id>`.

    Doc ids are sorted within each task: lm-eval logs the documents it evaluates (in dataset
    order) under the ids of the list as given, so an unsorted list logs the wrong ids
    (EleutherAI/lm-evaluation-harness#4089) and a prediction would read the wrong outcomes.
    """
    selection: dict[str, list[int]] = {}
    for sample_id in sample_ids:
        task, _, doc_id = str(sample_id).rpartition("/")
        if not task or re.fullmatch(r"[0-9]+", doc_id) is None:
            raise ValueError(f"sample id {sample_id!r} is not '<task>/<doc_id>', so the benchmark "
                             "was not condensed from lm-eval logs. Fix: list the anchors as ids "
                             "(without the lm-eval format) and evaluate them with your harness")
        selection.setdefault(task, []).append(int(doc_id))
    return {task: sorted(doc_ids) for task, doc_ids in sorted(selection.items())}


def _task_name(file: Path) -> str:
    """`samples_mmlu_anatomy_2024-05-01T12-00-00.jsonl` -> `mmlu_anatomy`."""
    return file.stem[len("samples_"):].rsplit("_", 1)[0]


def _read_model(tasks: dict[str, Path], metric: LmEvalMetric) -> dict[str, tuple]:
    rows = {}
    for task, file in sorted(tasks.items()):
        lines = file.read_text().splitlines()
        if not any(line.strip() for line in lines):
            raise OutputsError(f"{file}: the file is empty. Fix: re-run lm_eval with "
                               "--log_samples")
        for lineno, line in enumerate(lines, 1):
            if line.strip():
                row = json_object(line, f"{file}:{lineno}", "re-run lm_eval with --log_samples "
                                  "(the file may be cut short), and use its output unmodified")
                sample_id = f"{task}/{_field(file, lineno, row, 'doc_id')}"
                if sample_id in rows:
                    raise OutputsError(f"{file}:{lineno}: field 'doc_id': {sample_id} is logged "
                                       "twice. Fix: use one run's log per task")
                rows[sample_id] = _parse_row(file, lineno, row, metric) + (task,)
    return rows


def _field(file: Path, lineno: int, row: dict, name: str):
    if name not in row:
        raise OutputsError(f"{file}:{lineno}: field '{name}' is missing. Fix: use lm_eval's "
                           "--log_samples output unmodified (multiple-choice tasks only)")
    return row[name]


def _parse_row(file: Path, lineno: int, row: dict, metric: LmEvalMetric) -> tuple:
    """(probabilities, gold, correct) of one logged sample."""
    resps = _field(file, lineno, row, "filtered_resps")
    try:
        loglik = np.array([float(r[0]) for r in resps])
    except (TypeError, ValueError, IndexError) as err:
        raise OutputsError(f"{file}:{lineno}: field 'filtered_resps' is not a list of "
                           "[loglikelihood, is_greedy] pairs. Fix: only multiple-choice "
                           "(loglikelihood) tasks can be read") from err
    if metric == "acc_norm":
        args = _field(file, lineno, row, "arguments")
        options = args.values() if isinstance(args, dict) else args
        lengths = [completion_length(a["arg_1"] if isinstance(a, dict) else a[1])
                   for a in options]
        loglik = loglik / np.array(lengths, dtype=np.float64)
    gold = _gold(file, lineno, _field(file, lineno, row, "target"), len(loglik))
    correct = float(row[metric]) if metric in row else float(np.argmax(loglik) == gold)
    return softmax(loglik), gold, correct


def _gold(file: Path, lineno: int, target, n_choices: int) -> int:
    """The logged `target` as the index of the right choice."""
    try:
        gold = int(target)
    except (TypeError, ValueError):
        gold = -1
    if str(target).strip() != str(gold) or not 0 <= gold < n_choices:
        raise OutputsError(f"{file}:{lineno}: field 'target' is {str(target)[:40]!r}, not the "
                           f"index of one of the {n_choices} choices. Fix: only multiple-choice "
                           "tasks whose target is the right choice's index can be read")
    return gold


def _assemble(records: dict[str, dict[str, tuple]], source: str,
              metric: LmEvalMetric) -> ModelOutputs:
    models = sorted(records)
    sample_ids = list(records[models[0]])   # a model's docs may be logged in any order
    for model in models[1:]:
        if records[model].keys() != records[models[0]].keys():
            raise OutputsError(
                f"{source}: field 'doc_id' differs between models {models[0]} and {model}. "
                "Fix: evaluate every model on the same tasks and samples (no --limit)")
    n_choices = max(len(rec[0]) for rec in records[models[0]].values())
    probs = np.zeros((len(models), len(sample_ids), n_choices), dtype=np.float32)
    correct = np.zeros((len(models), len(sample_ids)), dtype=np.float32)
    for m, model in enumerate(models):
        for i, sid in enumerate(sample_ids):
            p, _, c, _ = records[model][sid]
            probs[m, i, :len(p)] = p
            correct[m, i] = c
    first = records[models[0]]
    gold = [first[sid][1] for sid in sample_ids]
    groups = [first[sid][3] for sid in sample_ids]
    return ModelOutputs(models, sample_ids, correct, probs=probs, gold=gold,
                        groups=groups if len(set(groups)) > 1 else None, source=source,
                        meta={"lm_eval_metric": metric})
