"""BIG-bench multiple-choice task.json files: lm-eval's prompt, gold answers, sampling, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from disco_ray.tasks.bigbench import task
from disco_ray.tasks.local import TaskFileError

FIXTURES = Path(__file__).parent / "fixtures" / "bigbench"


def _write_task(root: Path, name: str, data) -> Path:
    (root / name).mkdir(parents=True, exist_ok=True)
    path = root / name / "task.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _example(**fields) -> dict:
    return {"input": "Is it?", "target_scores": {"yes": 1, "no": 0}, **fields}


def test_default_prefixes_append_the_shuffled_choices_and_strip_the_prompt():
    bench = task(FIXTURES, ["capitals"])
    first = bench.samples[0]
    # task prefix + "\nQ: " + input + choices (sorted, then BIG-bench's seed-42 shuffle)
    # + "\nA: ", stripped: the `inputs` field lm-eval's bigbench multiple_choice tasks read.
    order = np.random.RandomState(42).permutation(["Lyon", "Nice", "Paris"])
    assert first.context == ("Name the capital city.\n\nQ: What is the capital of France?"
                             + "".join(f"\n  choice: {c}" for c in order) + "\nA:")
    assert first.choices == (" Paris", " Lyon", " Nice") and first.gold == 0
    assert (first.sample_id, first.group, bench.name, bench.metric) == (
        "capitals/0", "capitals", "bigbench", "acc")


def test_gold_is_the_first_highest_score_and_duplicates_are_dropped():
    bench = task(FIXTURES, ["capitals"])
    assert [s.sample_id for s in bench.samples] == [f"capitals/{i}" for i in range(5)]
    assert [s.choices[s.gold] for s in bench.samples] == [" Paris", " Rome", " Tokyo",
                                                          " Madrid", " Berlin"]
    assert [s.n_options for s in bench.samples] == [3, 3, 3, 2, 3]


def test_task_prefixes_from_the_file_and_no_choices_in_the_prompt():
    bench = task(FIXTURES, ["yes_no"])
    assert bench.samples[1].context == "Statement: The sun orbits the earth.\nTrue or false?"
    assert bench.samples[1].choices == (" True", " False") and bench.samples[1].gold == 1


def test_several_tasks_make_one_task_grouped_by_name():
    bench = task(FIXTURES, ["capitals", "yes_no"], name="mix")
    assert bench.name == "mix" and len(bench.samples) == 9
    assert [s.group for s in bench.samples] == ["capitals"] * 5 + ["yes_no"] * 4


def test_limit_draws_a_seeded_sample_kept_in_file_order():
    first = task(FIXTURES, ["capitals"], limit=3, seed=1)
    again = task(FIXTURES, ["capitals"], limit=3, seed=1)
    other = [task(FIXTURES, ["capitals"], limit=3, seed=s).sample_ids for s in range(2, 8)]
    assert first.sample_ids == again.sample_ids and len(first.sample_ids) == 3
    assert first.sample_ids == sorted(first.sample_ids, key=lambda i: int(i.split("/")[1]))
    assert any(ids != first.sample_ids for ids in other)
    assert len(task(FIXTURES, ["capitals"], limit=50).samples) == 5


def test_a_subtask_is_named_task_slash_subtask(tmp_path):
    _write_task(tmp_path / "parent", "child", {"examples": [_example()]})
    assert task(tmp_path, ["parent/child"]).sample_ids == ["parent/child/0"]


@pytest.mark.parametrize("data, message", [
    ("{not json", "cannot read it as JSON"),
    ([1, 2], "expected a JSON object"),
    ({"examples": []}, "field 'examples': must be a non-empty list"),
    ({"subtasks": ["a"]}, "give one as task/subtask"),
    ({"examples": [{"target_scores": {"a": 1, "b": 0}}]}, "field 'input': is missing"),
    ({"examples": [{"input": "q", "target": "a"}]}, "field 'target_scores'"),
    ({"examples": [_example(target_scores={"a": 1, "b": 1})]}, "same score"),
    ({"examples": [_example(target_scores={"a": "1", "b": 0})]}, "not a number"),
    ({"examples": [_example()], "example_input_prefix": 3}, "field 'example_input_prefix'"),
    ({"examples": [_example()], "append_choices_to_input": "no"}, "append_choices_to_input"),
    ({"examples": ["q"]}, "examples[0]"),
])
def test_bad_files_name_the_file_the_field_and_the_fix(tmp_path, data, message):
    path = _write_task(tmp_path, "bad", data)
    with pytest.raises(TaskFileError, match="Fix:") as err:
        task(tmp_path, ["bad"])
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_folder_or_task_says_how_to_get_it(tmp_path):
    with pytest.raises(TaskFileError, match="pip download --no-deps bigbench==1.0.0"):
        task(tmp_path / "nowhere", ["capitals"])
    with pytest.raises(TaskFileError, match="'nope' is not a task in"):
        task(FIXTURES, ["nope"])
    with pytest.raises(TaskFileError, match="non-empty list of BIG-bench task names"):
        task(FIXTURES, "capitals")
