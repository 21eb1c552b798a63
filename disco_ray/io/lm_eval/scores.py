"""Each model's full-benchmark score as lm-eval reports it, and which definition that is.

A group's score in lm-eval's results file is its `aggregate_metric_list` aggregate over its
subtasks: weighted by subtask size (`weight_by_size: True`, as `mmlu` does: the mean over all
its questions) or not (the mean of the subtasks' scores). When one group covers exactly the
tasks read, with every sample of them, each model's full score is that group's score; the
weighting, which the results file does not record, is told from the subtasks' scores and sizes
beside it. Otherwise the full score is the mean over the tasks of each task's score.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from disco_ray.io.lm_eval.runs import LoggedTask

log = logging.getLogger(__name__)
TOLERANCE = 1e-9


@dataclass(frozen=True)
class GroupScore:
    """One model's score of a group, read from its results file."""

    group: str
    value: float
    weightings: frozenset[str]   # those its subtasks' scores reproduce: "size", "mean"
    n_samples: int


def full_scores(models: list[str], logged: dict[str, dict[str, LoggedTask]],
                counts: dict[str, int], metric: str) -> tuple[np.ndarray | None, str]:
    """([M] full scores, or None to compute them from the samples; the definition used).

    `logged`: each model's tasks as read; `counts`: the number of samples read per task.
    """
    found = {model: group_score(logged[model], counts, metric) for model in models}
    groups = {score.group for score in found.values() if score is not None}
    if len(groups) == 1 and all(found.values()):
        scores = [found[model] for model in models]
        weightings = frozenset.intersection(*(s.weightings for s in scores))
        return (np.array([s.value for s in scores], dtype=np.float64),
                _aggregate_definition(scores[0], weightings, len(counts), metric))
    if groups:
        missing = [m for m in models if found[m] is None or found[m].group != min(groups)]
        log.warning("lm-eval logs: %s has no results file giving group %r's %s over the tasks "
                    "read; every model's full score is computed from the samples instead",
                    missing[0], min(groups), metric)
    if len(counts) == 1:
        [(task, n)] = counts.items()
        return None, f"the mean {metric} over the {n} samples of task {task!r}"
    return None, (f"the mean of the {len(counts)} tasks' {metric} (no lm-eval group score "
                  "covers all samples of exactly these tasks)")


def group_score(tasks: dict[str, LoggedTask], counts: dict[str, int],
                metric: str) -> GroupScore | None:
    """The score of the group whose subtasks are exactly `tasks`, from the results files of
    the runs that logged them; None without one, or when a run left samples out."""
    results, subtasks, n_samples = {}, {}, {}
    for run in sorted({t.run for t in tasks.values()}, key=lambda run: run.stamp):
        run_results = run.results or {}
        results.update(run_results.get("results") or {})
        subtasks.update(run_results.get("group_subtasks") or {})
        n_samples.update(run_results.get("n-samples") or {})
    if any(_complete(n_samples.get(task)) != counts[task] for task in tasks):
        return None
    covering = [g for g in subtasks if _leaves(g, subtasks) == set(tasks)
                and _metric(results.get(g), metric) is not None]
    outermost = sorted(g for g in covering
                       if not any(g in subtasks[other] for other in covering))
    if not outermost:
        return None
    group = outermost[0]
    value = _metric(results[group], metric)
    leaves = sorted(tasks)
    sub = np.array([_or_nan(_metric(results.get(t), metric)) for t in leaves], dtype=np.float64)
    sizes = np.array([counts[t] for t in leaves], dtype=np.float64)
    weightings = {name for name, mean in (("size", sub @ sizes / sizes.sum()),
                                          ("mean", sub.mean()))
                  if abs(mean - value) <= TOLERANCE}
    return GroupScore(group, value, frozenset(weightings), int(sizes.sum()))


def _aggregate_definition(score: GroupScore, weightings: frozenset[str], n_tasks: int,
                          metric: str) -> str:
    how = {frozenset({"size"}): f"weighted by subtask size: the mean over its "
                                f"{score.n_samples} samples",
           frozenset({"mean"}): f"the mean of its {n_tasks} subtasks' {metric}",
           frozenset({"size", "mean"}): f"its {n_tasks} subtasks' mean, which equals the mean "
                                        f"over its {score.n_samples} samples"}
    return (f"lm-eval's {metric} of group {score.group!r} from its results file "
            f"({how.get(weightings, 'as lm-eval aggregates it')})")


def _complete(count) -> int | None:
    """The number of samples a run scored of a task, if it scored all of them."""
    if not isinstance(count, dict) or count.get("original") != count.get("effective"):
        return None
    return count.get("effective")


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def _leaves(group: str, subtasks: dict[str, list]) -> set[str]:
    """The tasks under `group`, through nested groups."""
    leaves: set[str] = set()
    for child in subtasks.get(group) or []:
        leaves |= _leaves(child, subtasks) if child in subtasks else {child}
    return leaves


def _metric(entry, metric: str) -> float | None:
    """`<metric>,<filter>` of a results entry: lm-eval's default filter `none`, or the only
    filter it has."""
    if not isinstance(entry, dict):
        return None
    values = {key: value for key, value in entry.items()
              if key.split(",")[0] == metric and isinstance(value, (int, float))}
    value = values.get(f"{metric},none", next(iter(values.values())) if len(values) == 1 else None)
    return None if value is None else float(value)
