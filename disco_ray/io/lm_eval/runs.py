"""Which logged tasks belong to which model, from the files lm-eval writes per run.

One `lm_eval` run stamps every file it writes with one date: `samples_<task>_<date>.jsonl` per
task and the results file, `results_<date>.json` in `<output_path>/<model folder>/` (or
`<name>_<date>.json` beside the samples when `--output_path` is `<name>.json`). A run's model is
the `model_name` its results file records (what `--model_args pretrained=...` named), else the
one in its `config.model_args`, else the folder's name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from disco_ray.io.json_object import json_object
from disco_ray.outputs import OutputsError

log = logging.getLogger(__name__)

# lm-eval's order: an adapter (peft, delta) names the model before its base (pretrained).
MODEL_ARG_KEYS = ("peft", "delta", "pretrained", "model", "path", "engine")


@dataclass(frozen=True, eq=False)   # compared and hashed by identity: one object per run
class Run:
    """One `lm_eval` invocation: its folder, date stamp and parsed results file (if any)."""

    folder: Path
    stamp: str
    results: dict | None = None


@dataclass(frozen=True)
class LoggedTask:
    """One task's samples file and the run that wrote it."""

    file: Path
    run: Run


def task_name(file: Path) -> str:
    """`samples_mmlu_anatomy_2024-05-01T12-00-00.jsonl` -> `mmlu_anatomy`."""
    return file.stem[len("samples_"):].rsplit("_", 1)[0]


def model_tasks(path: Path, files: list[Path]) -> dict[str, dict[str, LoggedTask]]:
    """{model: {task: LoggedTask}} for the samples `files` found under `path`.

    A task logged again in the same folder reads the later run; one model named by runs in two
    folders is refused (two evaluations would be merged into one model).
    """
    runs: dict[tuple[Path, str], Run] = {}
    by_model: dict[str, dict[str, LoggedTask]] = {}
    folders: dict[str, Path] = {}
    for file in sorted(files, key=lambda f: (f.parent, _stamp(f), f.name)):
        key = (file.parent, _stamp(file))
        if key not in runs:
            runs[key] = Run(file.parent, key[1], _results(file.parent, key[1]))
        run = runs[key]
        model = run_model(run, file.stem if path.is_file() else file.parent.name)
        first = folders.setdefault(model, file.parent)
        if first != file.parent:
            raise OutputsError(
                f"{path}: folders {first} and {file.parent} both hold lm-eval runs of model "
                f"{model!r}. Fix: keep one folder per model (move one run's files, or point "
                "--data at one of the folders)")
        tasks = by_model.setdefault(model, {})
        task = task_name(file)
        if task in tasks:
            log.warning("%s: task %s was logged again; reading the later run %s", file.parent,
                        task, file.name)
        tasks[task] = LoggedTask(file, run)
    return by_model


def run_model(run: Run, fallback: str) -> str:
    """The model a run evaluated, as its results file names it; `fallback` without one."""
    results = run.results or {}
    name = results.get("model_name")
    if isinstance(name, str) and name:
        return name
    args = (results.get("config") or {}).get("model_args")
    if isinstance(args, dict):
        named = [str(args[key]) for key in MODEL_ARG_KEYS if args.get(key)]
        return named[0] if named else fallback
    if isinstance(args, str):
        pairs = dict(item.split("=", 1) for item in args.split(",") if "=" in item)
        named = [pairs[key] for key in MODEL_ARG_KEYS if pairs.get(key)]
        return named[0] if named else fallback
    return fallback


def _stamp(file: Path) -> str:
    """The date lm-eval stamps on every file of one run (the name's last `_` field)."""
    return file.stem.rsplit("_", 1)[-1]


def _results(folder: Path, stamp: str) -> dict | None:
    """The results file written with the samples of run `stamp` in `folder`, parsed; None if
    there is none (then names and full scores come from the folder and the samples)."""
    candidates = sorted(folder.glob(f"*_{stamp}.json"),
                        key=lambda f: (not f.name.startswith("results_"), f.name))
    if not candidates:
        return None
    file = candidates[0]
    results = json_object(file.read_text(), str(file), "use lm_eval's results file unmodified, "
                          "or remove it (model names then come from the folder names)")
    if not isinstance(results.get("results"), dict):
        raise OutputsError(f"{file}: field 'results' is missing, so this is not an lm-eval "
                           "results file. Fix: rename or move it out of the log folder")
    return results
