"""Real lm-evaluation-harness runs for the `lm_eval` suite: tiny models, a local task group.

`write_tasks(root)` writes a group `tinymc` (`aggregate_metric_list` with `weight_by_size: True`)
of four multiple-choice tasks of different sizes, one per target shape lm-eval logs: an index
target (`tinymc_index`), a letter target like lm-eval's `commonsense_qa` (`tinymc_letter`,
`target: "C"`), the answer's text (`tinymc_text`) and one context per option like Winogrande
(`tinymc_wino`); and a task outside the group (`tinyextra`). Data are local JSON lines.
`Harness` runs lm-eval in this process with one task index (lm-eval's own evaluation and file
writing, as its CLI does), so its ~10k built-in task files are indexed once per session.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ("red blue green cat dog sun moon tree rock fish bird milk salt rain wind snow "
         "leaf seed corn frog").split()
LETTERS = "ABCDE"
GROUP = "tinymc"
GROUP_TASKS = ("tinymc_index", "tinymc_letter", "tinymc_text", "tinymc_wino")
EXTRA_TASK = "tinyextra"
SIZES = {"tinymc_index": 40, "tinymc_letter": 24, "tinymc_text": 16, "tinymc_wino": 30,
         EXTRA_TASK: 12}
# Per task: doc_to_text, doc_to_choice, doc_to_target.
PROMPTS = {
    "tinymc_index": ('"Question: {{question}}\\nAnswer:"', "choices", "answer"),
    "tinymc_letter": ('"Question: {{question}}\\nA. {{choices.text[0]}}\\nB. {{choices.text[1]}}'
                      '\\nC. {{choices.text[2]}}\\nD. {{choices.text[3]}}\\nE. '
                      '{{choices.text[4]}}\\nAnswer:"', '"{{choices.label}}"', "answerKey"),
    "tinymc_text": ('"{{question}} is"', "choices", '"{{choices[answer]}}"'),
    "tinymc_wino": ("label", "contexts", "continuation"),
    EXTRA_TASK: ('"Pick: {{question}}\\nAnswer:"', "choices", "answer"),
}


def documents(task: str, rng: random.Random) -> list[dict]:
    """The task's docs; `right_option(task, doc)` is each doc's right option."""
    docs = []
    for _ in range(SIZES[task]):
        words = rng.sample(WORDS, 6)
        if task == "tinymc_letter":
            docs.append({"question": " ".join(words[:3]),
                         "choices": {"label": list(LETTERS), "text": words[1:6]},
                         "answerKey": rng.choice(LETTERS)})
        elif task == "tinymc_wino":   # contexts of different lengths: acc_norm differs from acc
            docs.append({"contexts": [f"The {words[0]} saw a {words[1]}",
                                      f"The {words[0]} saw a {words[2]}{words[3]}"],
                         "continuation": "and ran away.", "label": rng.randrange(2)})
        else:
            n = 3 if task == "tinymc_text" else 4
            docs.append({"question": " ".join(words[:2]), "choices": words[2:2 + n],
                         "answer": rng.randrange(n)})
    return docs


def right_option(task: str, doc: dict) -> int:
    """The right option of a doc as the dataset says it."""
    if task == "tinymc_letter":
        return LETTERS.index(doc["answerKey"])
    return doc["label"] if task == "tinymc_wino" else doc["answer"]


def write_tasks(root: Path) -> dict[str, list[dict]]:
    """Write the task YAMLs to `root/tasks` and their data to `root/data`; return the docs."""
    rng = random.Random(29)
    (root / "tasks").mkdir(parents=True)
    (root / "data").mkdir()
    docs = {}
    for task, (text, choice, target) in PROMPTS.items():
        docs[task] = documents(task, rng)
        data = root / "data" / f"{task}.jsonl"
        data.write_text("".join(json.dumps(doc) + "\n" for doc in docs[task]))
        (root / "tasks" / f"{task}.yaml").write_text(
            f"task: {task}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
            f"    test: {data}\n  cache_dir: {root / 'hf_cache'}\ntest_split: test\n"
            f"output_type: multiple_choice\ndoc_to_text: {text}\ndoc_to_choice: {choice}\n"
            f"doc_to_target: {target}\nmetric_list:\n"
            + "".join(f"  - metric: {m}\n    aggregation: mean\n    higher_is_better: true\n"
                      for m in ("acc", "acc_norm"))
            + "metadata:\n  version: 1.0\n")
    (root / "tasks" / f"{GROUP}.yaml").write_text(
        f"group: {GROUP}\ntask: [{', '.join(GROUP_TASKS)}]\naggregate_metric_list:\n"
        + "".join(f"  - metric: {m}\n    weight_by_size: True\n" for m in ("acc", "acc_norm"))
        + "metadata:\n  version: 1.0\n")
    return docs


def build_models(root: Path, names: list[str]) -> dict[str, Path]:
    """Tiny character-level GPT-2s of different seeds and shapes, `root/models/<name>`."""
    from disco_ray.backends.tiny import build_tiny_gpt2

    shapes = ((1, 32), (2, 32), (2, 48), (1, 48), (3, 32))
    paths = {}
    for seed, name in enumerate(names):
        n_layer, n_embd = shapes[seed % len(shapes)]
        paths[name] = build_tiny_gpt2(root / "models" / name, seed=seed, n_layer=n_layer,
                                      n_embd=n_embd)
    return paths


class Harness:
    """lm-eval's evaluation in this process, over one index of the local tasks only."""

    def __init__(self, tasks_dir: Path):
        from lm_eval.tasks import TaskManager

        self.task_manager = TaskManager(include_path=str(tasks_dir), include_defaults=False)

    def run(self, model: Path, tasks: list[str], output_path: Path,
            samples: dict[str, list[int]] | None = None) -> dict:
        """`lm_eval --model hf --log_samples --output_path ...` for one model; its results."""
        from lm_eval import simple_evaluate
        from lm_eval.loggers import EvaluationTracker

        tracker = EvaluationTracker(output_path=str(output_path))
        results = simple_evaluate(model="hf", model_args=f"pretrained={model},dtype=float32",
                                  tasks=tasks, batch_size=16, device="cpu", samples=samples,
                                  log_samples=True, evaluation_tracker=tracker,
                                  task_manager=self.task_manager)
        logged = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=logged)
        for task in results["configs"]:
            tracker.save_results_samples(task_name=task, samples=logged[task])
        return results


def logged_lines(folder: Path, task: str) -> list[dict]:
    """The lines of the (only) samples file of `task` in `folder`."""
    [file] = folder.glob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in file.read_text().splitlines()]
