"""BIG-bench multiple-choice tasks from their `task.json` files, prompted as lm-eval does.

BIG-bench ships each task as `<tasks_dir>/<task>/task.json` (a subtask as
`<tasks_dir>/<task>/<subtask>/task.json`), e.g. in the `bigbench==1.0.0` source distribution:

    pip download --no-deps bigbench==1.0.0 -d ~/.cache/disco_ray
    tar xzf ~/.cache/disco_ray/bigbench-1.0.0.tar.gz -C ~/.cache/disco_ray
    # tasks_dir: ~/.cache/disco_ray/bigbench-1.0.0/bigbench/benchmark_tasks

A multiple-choice example is `{"input": text, "target_scores": {choice: score, ...}}`; the file
may set `task_prefix`, `example_input_prefix` ("\\nQ: "), `choice_prefix` ("\\n  choice: "),
`example_output_prefix` ("\\nA: ") and `append_choices_to_input` (true). The prompt is the one
lm-evaluation-harness's `bigbench_*_multiple_choice` tasks read (the `inputs` field of the
Hugging Face BIG-bench datasets, zero-shot): task prefix + input prefix + input (+ the choices,
sorted and then shuffled with BIG-bench's seed 42) + output prefix, stripped. Each choice is
scored as " " + choice (lm-eval's target delimiter); the gold answer is the first choice with
the highest score. Duplicate examples are dropped, as BIG-bench does.
"""

from __future__ import annotations

import json
import numbers
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from disco_ray.tasks.base import MCSample, Metric, Task
from disco_ray.tasks.local import TaskFileError

BIGBENCH_SEED = 42   # BIG-bench's default_format_fn seed, reset for every example
DOWNLOAD_HINT = ("pip download --no-deps bigbench==1.0.0 -d DIR && tar xzf "
                 "DIR/bigbench-1.0.0.tar.gz -C DIR, then give DIR/bigbench-1.0.0/bigbench/"
                 "benchmark_tasks")
PREFIXES = {"task_prefix": "", "example_input_prefix": "\nQ: ", "choice_prefix": "\n  choice: ",
            "example_output_prefix": "\nA: "}


def task(tasks_dir: str | Path, tasks: Sequence[str], limit: int | None = None, seed: int = 0,
         metric: Metric = "acc", name: str = "bigbench") -> Task:
    """Config factory: one task made of the BIG-bench tasks `tasks` (names of folders under
    `tasks_dir`, `task/subtask` for a subtask), each a group of its own. `limit` keeps that
    many examples per task, drawn at random with `seed` (kept in file order)."""
    if isinstance(tasks, str) or not tasks:
        raise TaskFileError(f"task.options.tasks: must be a non-empty list of BIG-bench task "
                            f"names, got {tasks!r}. Fix: e.g. tasks: [emoji_movie, "
                            "general_knowledge]")
    root = Path(os.path.expanduser(str(tasks_dir)))
    samples: list[MCSample] = []
    for task_name in tasks:
        samples += task_samples(task_file(root, task_name), task_name, limit, seed)
    return Task(name, tuple(samples), metric)


def task_file(tasks_dir: Path, task_name: str) -> Path:
    """`tasks_dir/<task_name>/task.json`, or an error that says how to get it."""
    if not tasks_dir.is_dir():
        raise TaskFileError(f"{tasks_dir}: BIG-bench task folder not found. Fix: "
                            f"{DOWNLOAD_HINT}")
    path = tasks_dir / task_name / "task.json"
    if not path.is_file():
        raise TaskFileError(f"{path}: not found; '{task_name}' is not a task in {tasks_dir}. "
                            "Fix: give the name of a folder there that holds a task.json")
    return path


def task_samples(path: Path, task_name: str, limit: int | None = None,
                 seed: int = 0) -> list[MCSample]:
    """The multiple-choice samples of one `task.json` (ids `<task_name>/<index>`)."""
    data = _read_json(path)
    prefixes = _prefixes(data, path)
    append_choices = data.get("append_choices_to_input", True)
    if not isinstance(append_choices, bool):
        raise _fail(path, "append_choices_to_input", f"must be true or false, got "
                    f"{append_choices!r}", "write true or false")
    examples = _distinct(_examples(data, path))
    keep = range(len(examples))
    if limit is not None and limit < len(examples):
        keep = sorted(np.random.default_rng(seed).choice(len(examples), limit, replace=False))
    return [example_sample(examples[i], f"{task_name}/{i}", task_name, prefixes, append_choices,
                           f"{path}: examples[{i}]") for i in keep]


def example_sample(example: dict, sample_id: str, group: str, prefixes: dict[str, str],
                   append_choices: bool, where: str) -> MCSample:
    """One BIG-bench example as an MCSample (prompt and choices as lm-eval reads them)."""
    text = example.get("input")
    if not isinstance(text, str):
        raise _fail(where, "input", "must be a string" if "input" in example else "is missing",
                    "give the question text as 'input'")
    scores = example.get("target_scores")
    if not isinstance(scores, dict) or len(scores) < 2:
        raise _fail(where, "target_scores", "must map at least two choices to scores",
                    "give a multiple-choice task: {\"choice\": score, ...} with the correct "
                    "choice scored highest")
    values = list(scores.values())
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise _fail(where, "target_scores", "has a score that is not a number",
                    "score every choice with a number (1 correct, 0 wrong)")
    if max(values) <= min(values):
        raise _fail(where, "target_scores", "gives every choice the same score",
                    "score the correct choice highest")
    choices = list(scores)
    if append_choices:
        order = np.random.RandomState(BIGBENCH_SEED).permutation(sorted(choices))
        text += prefixes["choice_prefix"] + prefixes["choice_prefix"].join(order)
    context = (prefixes["task_prefix"] + prefixes["example_input_prefix"] + text
               + prefixes["example_output_prefix"]).strip()
    return MCSample(sample_id, context, tuple(" " + c.strip() for c in choices),
                    values.index(max(values)), group=group)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TaskFileError(f"{path}: cannot read it as JSON ({err}). Fix: give an intact "
                            f"BIG-bench task.json ({DOWNLOAD_HINT})") from None
    if not isinstance(data, dict):
        raise TaskFileError(f"{path}: expected a JSON object, got {type(data).__name__}. Fix: "
                            "give a BIG-bench task.json")
    return data


def _prefixes(data: dict, path: Path) -> dict[str, str]:
    prefixes = {key: data.get(key, default) for key, default in PREFIXES.items()}
    for key, value in prefixes.items():
        if not isinstance(value, str):
            raise _fail(path, key, f"must be a string, got {type(value).__name__}",
                        "write the prefix as text or leave it out")
    return prefixes


def _examples(data: dict, path: Path) -> list[dict]:
    examples = data.get("examples")
    if not isinstance(examples, list) or not examples:
        hint = (" (this task has subtasks: give one as task/subtask)"
                if data.get("subtasks") or "examples" not in data else "")
        raise _fail(path, "examples", f"must be a non-empty list{hint}",
                    "give a task.json with examples, or a subtask's")
    for i, example in enumerate(examples):
        if not isinstance(example, dict):
            raise _fail(f"{path}: examples[{i}]", "examples", "is not an object",
                        "write each example as {\"input\": ..., \"target_scores\": {...}}")
    return examples


def _distinct(examples: list[dict]) -> list[dict]:
    """`examples` without repeats (BIG-bench drops exact duplicates, keeping the first)."""
    seen, distinct = set(), []
    for example in examples:
        key = json.dumps(example, sort_keys=False)
        if key not in seen:
            seen.add(key)
            distinct.append(example)
    return distinct


def _fail(where: str | Path, field: str, problem: str, fix: str) -> TaskFileError:
    return TaskFileError(f"{where}: field '{field}': {problem}. Fix: {fix}")
