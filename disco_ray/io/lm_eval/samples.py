"""One model's logged samples, and the right answer of each sample read across models.

A line of `samples_<task>_<date>.jsonl` holds `doc_id`, `target`, `arguments` (per option
`{"arg_0": context, "arg_1": continuation}`), `filtered_resps` (per option `[loglikelihood,
is_greedy]`) and the per-sample metrics such as `acc`, `acc_norm`.

lm-eval logs `target` as text: the right option's index (`"2"`), its letter or text (`"C"`, the
`commonsense_qa` style, matched against the continuations without the delimiter lm-eval puts
before them), or, for tasks with one context per option (Winogrande), the shared continuation,
which names no option. An option the target does not single out is told by the logged `acc`
(and `acc_norm`): a model's log says whether its top option is the right one, and the right
option is the one every model's log agrees with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from disco_ray.io.json_object import json_object
from disco_ray.outputs import OutputsError
from disco_ray.tasks.base import completion_length

FIX_LOG = "use lm_eval's --log_samples output unmodified (multiple-choice tasks only)"


@dataclass(frozen=True)
class LoggedSample:
    """One model's logged answer to one sample.

    Attributes:
        loglik: [C] per-option log-likelihoods.
        lengths: [C] what `acc_norm` divides them by (lm-eval: the option's characters); None
            when the line has no `arguments`.
        named: the options the target names (all of them when it names none).
        metrics: the logged per-sample metrics among `acc`, `acc_norm`.
        exact_lengths: False for one-context-per-option tasks, whose `lengths` are the contexts'
            (lm-eval counts the option's own text inside the context: the same for zero-shot
            prompts without a description).
        where: `<file>:<line>` for error messages.
    """

    loglik: np.ndarray
    lengths: np.ndarray | None
    named: frozenset[int]
    metrics: dict[str, float] = field(default_factory=dict)
    exact_lengths: bool = True
    where: str = ""

    def scores(self, metric: str) -> np.ndarray:
        """The per-option scores `metric` ranks: log-likelihoods, for `acc_norm` divided by the
        option's length."""
        if metric != "acc_norm":
            return self.loglik
        if self.lengths is None:
            raise OutputsError(f"{self.where}: field 'arguments' is missing; acc_norm needs the "
                               f"options' text. Fix: {FIX_LOG}")
        return self.loglik / self.lengths


def read_samples(file: Path, task: str) -> dict[str, LoggedSample]:
    """{`<task>/<doc_id>`: LoggedSample} of one samples file."""
    lines = file.read_text().splitlines()
    if not any(line.strip() for line in lines):
        raise OutputsError(f"{file}: the file is empty. Fix: re-run lm_eval with --log_samples")
    rows: dict[str, LoggedSample] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{file}:{lineno}"
        row = json_object(line, where, "re-run lm_eval with --log_samples (the file may be cut "
                          "short), and use its output unmodified")
        sample_id = f"{task}/{_field(where, row, 'doc_id')}"
        if sample_id in rows:
            raise OutputsError(f"{where}: field 'doc_id': {sample_id} is logged twice. Fix: use "
                               "one run's log per task")
        rows[sample_id] = parse_sample(where, row)
    return rows


def parse_sample(where: str, row: dict) -> LoggedSample:
    """A logged line as a LoggedSample."""
    resps = _field(where, row, "filtered_resps")
    try:
        loglik = np.array([float(r[0]) for r in resps], dtype=np.float64)
    except (TypeError, ValueError, IndexError) as err:
        raise OutputsError(f"{where}: field 'filtered_resps' is not a list of [loglikelihood, "
                           "is_greedy] pairs. Fix: only multiple-choice (loglikelihood) tasks "
                           "can be read") from err
    metrics = {m: float(row[m]) for m in ("acc", "acc_norm") if row.get(m) is not None}
    target = _field(where, row, "target")
    if row.get("arguments") is None:
        return LoggedSample(loglik, None, _named(where, target, [""] * len(loglik), False),
                            metrics, where=where)
    contexts, continuations = _options(where, row["arguments"], len(loglik))
    per_option_context = len(set(contexts)) > 1
    lengths = [max(len(c), 1) for c in contexts] if per_option_context else \
        [completion_length(c) for c in continuations]
    return LoggedSample(loglik, np.array(lengths, dtype=np.float64),
                        _named(where, target, continuations, per_option_context), metrics,
                        not per_option_context, where)


def right_option(samples: list[LoggedSample]) -> int | None:
    """The right option of one sample from every model's log of it; None when the logs leave
    several options possible (one context per option, and every model wrong the same ways)."""
    first = samples[0]
    possible = set(first.named)
    for sample in samples:
        if len(sample.loglik) != len(first.loglik):
            raise OutputsError(f"{sample.where}: field 'filtered_resps' has {len(sample.loglik)} "
                               f"options, {first.where} {len(first.loglik)}. Fix: evaluate every "
                               "model on the same version of the task")
        possible &= sample.named
        for metric, value in sample.metrics.items():
            if metric == "acc_norm" and (sample.lengths is None or not sample.exact_lengths):
                continue
            top = int(np.argmax(sample.scores(metric)))
            possible = possible & {top} if value == 1.0 else possible - {top}
    if not possible:
        raise OutputsError(f"{first.where}: field 'target' {_shown_options(first)} contradicts "
                           "the logged acc, or another model's target or acc, of this sample. "
                           "Fix: use every model's lm_eval --log_samples output unmodified, from "
                           "one version of the task")
    return possible.pop() if len(possible) == 1 else None


def _field(where: str, row: dict, name: str):
    if name not in row:
        raise OutputsError(f"{where}: field '{name}' is missing. Fix: {FIX_LOG}")
    return row[name]


def _options(where: str, arguments, n_options: int) -> tuple[list[str], list[str]]:
    """(contexts, continuations) of the options, from lm-eval's `arguments` (a dict of
    `gen_args_<i>` as written, or a list of pairs)."""
    options = list(arguments.values()) if isinstance(arguments, dict) else list(arguments)
    try:
        pairs = [(o["arg_0"], o["arg_1"]) if isinstance(o, dict) else (o[0], o[1])
                 for o in options]
    except (KeyError, IndexError, TypeError) as err:
        raise OutputsError(f"{where}: field 'arguments' is not a list of (context, continuation) "
                           f"pairs. Fix: {FIX_LOG}") from err
    if len(pairs) != n_options:
        raise OutputsError(f"{where}: field 'arguments' has {len(pairs)} options, "
                           f"'filtered_resps' {n_options}. Fix: {FIX_LOG}")
    return [str(c) for c, _ in pairs], [str(c) for _, c in pairs]


def _named(where: str, target, continuations: list[str],
           per_option_context: bool) -> frozenset[int]:
    """The options `target` names: by index, or by text (the continuation without lm-eval's
    delimiter). One context per option: every option (the target is the shared continuation)."""
    everything = frozenset(range(len(continuations)))
    if per_option_context:
        return everything
    text = str(target)
    if isinstance(_as_json(text), list):
        raise OutputsError(f"{where}: field 'target' is {text[:40]!r}: several right answers. "
                           "Fix: only tasks with one right option per sample can be read")
    named = {i for i, c in enumerate(continuations)
             if text and c.endswith(text) and not c[:len(c) - len(text)].strip()}
    if text.strip().isdigit() and int(text) < len(continuations):
        named.add(int(text))
    if not named:
        raise OutputsError(f"{where}: field 'target' is {text[:40]!r}, neither the index nor the "
                           f"text of one of the {len(continuations)} choices, so lm-eval scored "
                           "it wrong for every model. Fix: check the task's doc_to_target and "
                           "doc_to_choice")
    return frozenset(named)


def _as_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _shown_options(sample: LoggedSample) -> str:
    named = sorted(sample.named)
    return f"(option {named[0]})" if len(named) == 1 else f"(options {named})"
