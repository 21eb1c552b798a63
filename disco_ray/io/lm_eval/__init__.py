"""Reader of lm-evaluation-harness `--log_samples` output.

lm-eval writes, per run, `<output_path>/<model folder>/samples_<task>_<date>.jsonl` (one line per
doc) beside `results_<date>.json` (`runs`). Per sample, the outcome is lm-eval's own logged
`acc` / `acc_norm`; the probabilities are the softmax over the per-option log-likelihoods (for
`acc_norm` divided by the option's length in characters, as lm-eval counts it); the right option
comes from the logged target or, where that names none, from the models' logged outcomes
(`samples`). The full score is lm-eval's group score when one group covers exactly the tasks
read (`scores`); the definition used is in `meta["full_score_definition"]`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.special import softmax

from disco_ray.io.lm_eval.runs import LoggedTask, model_tasks, task_name
from disco_ray.io.lm_eval.samples import LoggedSample, read_samples, right_option
from disco_ray.io.lm_eval.scores import full_scores
from disco_ray.outputs import ModelOutputs, OutputsError

LmEvalMetric = Literal["acc", "acc_norm"]
log = logging.getLogger(__name__)

__all__ = ["LmEvalMetric", "read_lm_eval", "lm_eval_samples"]


def read_lm_eval(path: str | Path, task: str | None = None,
                 metric: LmEvalMetric = "acc") -> ModelOutputs:
    """Read one samples file, or a folder of lm-eval runs (any depth, one folder per model).

    Sample ids are `<task>/<doc_id>`; with several tasks (e.g. MMLU's 57 subtasks) each task is a
    group. `task` restricts to task names starting with it.
    """
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.rglob("samples_*.jsonl"))
    if task:
        files = [f for f in files if task_name(f).startswith(task)]
    if not files:
        raise OutputsError(f"{path}: no samples_<task>_*.jsonl files"
                           f"{f' for task {task!r}' if task else ''}. Fix: run lm_eval with "
                           "--log_samples --output_path and point at that folder")
    logged = model_tasks(path, files)
    records = {model: {sid: row for name, t in sorted(tasks.items())
                       for sid, row in read_samples(t.file, name).items()}
               for model, tasks in logged.items()}
    outputs = _assemble(records, logged, str(path), metric)
    log.info("%s: %d models; full score: %s", path, outputs.n_models,
             outputs.meta["full_score_definition"])
    return outputs


def lm_eval_samples(sample_ids: Iterable[str]) -> dict[str, list[int]]:
    """lm-eval's `--samples` selection, `{task: [doc_id, ...]}`, for sample ids `<task>/<doc_id>`.

    Doc ids are sorted within each task: lm-eval logs the documents it evaluates (in dataset
    order) under the ids of the list as given, so an unsorted list logs the wrong ids
    (EleutherAI/lm-evaluation-harness#4089) and a prediction would read the wrong outcomes.
    """
    selection: dict[str, list[int]] = {}
    for sample_id in sample_ids:
        name, _, doc_id = str(sample_id).rpartition("/")
        if not name or re.fullmatch(r"[0-9]+", doc_id) is None:
            raise ValueError(f"sample id {sample_id!r} is not '<task>/<doc_id>', so the benchmark "
                             "was not condensed from lm-eval logs. Fix: list the anchors as ids "
                             "(without the lm-eval format) and evaluate them with your harness")
        selection.setdefault(name, []).append(int(doc_id))
    return {name: sorted(doc_ids) for name, doc_ids in sorted(selection.items())}


def _assemble(records: dict[str, dict[str, LoggedSample]],
              logged: dict[str, dict[str, LoggedTask]], source: str,
              metric: LmEvalMetric) -> ModelOutputs:
    models = sorted(records)
    sample_ids = list(records[models[0]])   # a model's docs may be logged in any order
    for model in models[1:]:
        if records[model].keys() != records[models[0]].keys():
            raise OutputsError(
                f"{source}: field 'doc_id' differs between models {models[0]} and {model}. "
                "Fix: evaluate every model on the same tasks and samples (no --limit)")
    gold = [right_option([records[m][sid] for m in models]) for sid in sample_ids]
    n_choices = max(len(row.loglik) for row in records[models[0]].values())
    probs = np.zeros((len(models), len(sample_ids), n_choices), dtype=np.float32)
    correct = np.zeros((len(models), len(sample_ids)), dtype=np.float32)
    for m, model in enumerate(models):
        for i, (sid, right) in enumerate(zip(sample_ids, gold)):
            row = records[model][sid]
            scores = row.scores(metric)
            probs[m, i, :len(scores)] = softmax(scores)
            correct[m, i] = _outcome(row, metric, scores, right)
    groups = [sid.rpartition("/")[0] for sid in sample_ids]
    counts = dict(Counter(groups))
    full_score, definition = full_scores(models, logged, counts, metric)
    unknown = sum(g is None for g in gold)
    if unknown:
        log.warning("%s: the right option of %d of %d samples cannot be told from the logs (one "
                    "context per option, every model wrong the same ways); outputs have no gold, "
                    "so methods that read it (IRT, anchor mean) cannot be used. Fix: add "
                    "reference models, or condense with --method jsd_rf", source, unknown,
                    len(gold))
    return ModelOutputs(models, sample_ids, correct, probs=probs,
                        gold=None if unknown else gold,
                        groups=groups if len(counts) > 1 else None, full_score=full_score,
                        source=source,
                        meta={"lm_eval_metric": metric, "full_score_definition": definition})


def _outcome(row: LoggedSample, metric: str, scores: np.ndarray, right: int | None) -> float:
    """lm-eval's logged outcome; computed as it computes it when the task did not log it."""
    if metric in row.metrics:
        return row.metrics[metric]
    if right is None:
        raise OutputsError(f"{row.where}: field '{metric}' is missing and the right option "
                           "cannot be told from the logs. Fix: add the metric to the task's "
                           "metric_list and re-run lm_eval")
    return float(np.argmax(scores) == right)
