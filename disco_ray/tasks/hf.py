"""Standard benchmarks through Hugging Face `datasets`, formatted as lm-evaluation-harness does.

The row -> MCSample functions are pure and take rows in the Hub schema; only `load_hf_task`
needs `datasets` (imported lazily). Prompts follow lm-eval's zero-shot templates: MMLU
(`mmlu/default`), HellaSwag (`hellaswag/utils.py`), ARC-Challenge (`arc/arc_challenge.yaml`) and
Winogrande's partial evaluation (`winogrande/preprocess_winogrande.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from disco_ray.tasks.base import MCSample, Metric, Task

Row = dict[str, Any]
LETTERS = "ABCD"


class TaskRowError(ValueError):
    """A dataset row that cannot be turned into a scored sample."""


def mmlu_sample(row: Row, sample_id: str) -> MCSample:
    """MMLU (`cais/mmlu`): lettered options, continuations " A".." D", group = subject."""
    subject = row["subject"]
    options = "".join(f"{letter}. {choice}\n" for letter, choice in zip(LETTERS, row["choices"]))
    context = (f"The following are multiple choice questions (with answers) about "
               f"{subject.replace('_', ' ')}.\n\n{row['question'].strip()}\n{options}Answer:")
    return MCSample(sample_id, context, tuple(f" {letter}" for letter in LETTERS),
                    int(row["answer"]), group=subject)


def hellaswag_preprocess(text: str) -> str:
    """lm-eval's HellaSwag cleanup of WikiHow artefacts (`[title]`, `[header]`, double spaces)."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag_sample(row: Row, sample_id: str) -> MCSample:
    """HellaSwag (`Rowan/hellaswag`): "{activity}: {ctx}" then each cleaned ending."""
    ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    context = hellaswag_preprocess(row["activity_label"] + ": " + ctx)
    choices = tuple(" " + hellaswag_preprocess(ending) for ending in row["endings"])
    return MCSample(sample_id, context, choices, _label(row, "label", sample_id))


def arc_sample(row: Row, sample_id: str) -> MCSample:
    """ARC (`allenai/ai2_arc`): "Question: {q}\\nAnswer:", gold from `answerKey`."""
    labels = list(row["choices"]["label"])
    if row["answerKey"] not in labels:
        raise TaskRowError(f"ARC sample {sample_id}: field 'answerKey': "
                           f"'{row['answerKey']}' is not one of the labels {labels}")
    choices = tuple(" " + text for text in row["choices"]["text"])
    return MCSample(sample_id, f"Question: {row['question']}\nAnswer:", choices,
                    labels.index(row["answerKey"]))


def winogrande_sample(row: Row, sample_id: str) -> MCSample:
    """Winogrande partial evaluation: each option fills "_" in the sentence prefix (its
    context); every option scores the same continuation, the rest of the sentence."""
    sentence = row["sentence"]
    blank = sentence.index("_")
    prefix = sentence[:blank]
    contexts = (prefix + row["option1"], prefix + row["option2"])
    continuation = " " + sentence[blank + 1:].strip()
    gold = _label(row, "answer", sample_id) - 1
    return MCSample(sample_id, sentence, (continuation,), gold, choice_contexts=contexts)


def _label(row: Row, field: str, sample_id: str) -> int:
    value = row.get(field)
    if value is None or str(value).strip() == "":
        raise TaskRowError(f"sample {sample_id}: field '{field}' is empty (this split has no "
                           "public answers). Fix: use the validation split")
    return int(value)


@dataclass(frozen=True)
class HFTaskSpec:
    """Where a benchmark lives on the Hub and how its rows become samples."""

    dataset: str
    config: str | None
    split: str
    metric: Metric
    to_sample: Callable[[Row, str], MCSample]


HF_TASKS: dict[str, HFTaskSpec] = {
    "mmlu": HFTaskSpec("cais/mmlu", "all", "test", "acc", mmlu_sample),
    "hellaswag": HFTaskSpec("Rowan/hellaswag", None, "validation", "acc_norm", hellaswag_sample),
    "arc_challenge": HFTaskSpec("allenai/ai2_arc", "ARC-Challenge", "test", "acc_norm",
                                arc_sample),
    "winogrande": HFTaskSpec("allenai/winogrande", "winogrande_xl", "validation", "acc",
                             winogrande_sample),
}


def sample_ids(name: str, rows: list[Row]) -> list[str]:
    """Stable sample ids: "{subject}.{index in subject}" for MMLU, the row index otherwise."""
    if name != "mmlu":
        return [str(i) for i in range(len(rows))]
    counts: dict[str, int] = {}
    ids = []
    for row in rows:
        index = counts.get(row["subject"], 0)
        counts[row["subject"]] = index + 1
        ids.append(f"{row['subject']}.{index}")
    return ids


def load_hf_task(name: str, *, split: str | None = None, limit: int | None = None,
                 metric: Metric | None = None) -> Task:
    """Download (or read from the HF cache) one of `HF_TASKS` and format it as lm-eval does."""
    spec = HF_TASKS[name]
    try:
        import datasets
    except ImportError as err:
        raise ImportError(f"task '{name}' is loaded through Hugging Face datasets, which is not "
                          "installed. Fix: pip install datasets (or use a local .jsonl/.parquet "
                          "task file)") from err
    rows = list(datasets.load_dataset(spec.dataset, spec.config, split=split or spec.split))
    if limit is not None:
        rows = rows[:limit]
    samples = tuple(spec.to_sample(row, sid) for row, sid in zip(rows, sample_ids(name, rows)))
    return Task(name, samples, metric or spec.metric)
