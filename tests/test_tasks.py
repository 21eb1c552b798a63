"""Task loading: local JSONL/Parquet files, lm-eval formatting of Hub rows, the front door."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from disco_ray.tasks import BENCHMARKS, load_task
from disco_ray.tasks.hf import (HF_TASKS, TaskRowError, arc_sample, hellaswag_preprocess,
                                hellaswag_sample, load_hf_task, mmlu_sample, sample_ids,
                                winogrande_sample)
from disco_ray.tasks.local import TaskFileError, load_local_task

FIXTURE = Path(__file__).parent / "fixtures" / "tasks" / "tiny_mc.jsonl"


def _write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _record(**fields) -> dict:
    return {"id": "q1", "context": "Q?\nAnswer:", "choices": [" a", " b"], "gold": 1, **fields}


# -- local files ---------------------------------------------------------------------------------
def test_fixture_loads_with_groups_and_question_alias():
    task = load_task(FIXTURE)
    assert (task.name, task.metric, len(task.samples)) == ("tiny_mc", "acc", 12)
    assert {s.group for s in task.samples} == {"arithmetic", "geography"}
    geo = task.subset(["geo.0"]).samples[0]
    assert geo.context == "Question: What is the capital of France?\nAnswer:"
    assert geo.requests()[0] == (geo.context, " Paris") and geo.gold == 0


def test_limit_and_metric():
    task = load_task(str(FIXTURE), limit=3, metric="acc_norm")
    assert task.sample_ids == ["arith.0", "arith.1", "arith.2"] and task.metric == "acc_norm"


def test_parquet_matches_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    records = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    for r in records:
        r.setdefault("context", r.pop("question", None))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "tiny_mc.parquet")
    assert load_task(tmp_path / "tiny_mc.parquet").samples == load_task(FIXTURE).samples


def test_choice_contexts_and_integer_ids(tmp_path):
    path = _write_jsonl(tmp_path / "wino.jsonl", [
        {"id": 7, "choice_contexts": ["The cat", "The dog"], "choices": [" barked."], "gold": 1}])
    sample = load_local_task(path).samples[0]
    assert sample.sample_id == "7" and sample.n_options == 2
    assert sample.requests() == [("The cat", " barked."), ("The dog", " barked.")]


def test_classifier_inputs_without_context(tmp_path):
    path = _write_jsonl(tmp_path / "clf.jsonl", [
        {"id": "x", "inputs": [[0.5, 1.0], [2.0, 3.0]], "choices": ["cat", "dog"], "gold": 0}])
    sample = load_local_task(path).samples[0]
    assert sample.context == "" and sample.inputs.dtype == np.float32
    np.testing.assert_array_equal(sample.inputs, [[0.5, 1.0], [2.0, 3.0]])


@pytest.mark.parametrize("records, match", [
    ([_record(), {"context": "c", "choices": [" a"], "gold": 0}],
     r"line 2: field 'id': is missing"),
    ([{"id": "q", "choices": [" a"], "gold": 0}], r"line 1: field 'context': is missing"),
    ([_record(gold=2)], r"field 'gold': is 2, out of range for 2 options.*between 0 and 1"),
    ([_record(gold="1")], r"field 'gold': must be an integer"),
    ([_record(), _record()], r"line 2: field 'id': duplicate id 'q1' \(first at .*line 1\)"),
    ([_record(choices=" a")], r"field 'choices': must be a list of strings"),
    ([_record(choices=[])], r"field 'choices': must be a non-empty list"),
    ([{k: v for k, v in _record().items() if k != "choices"}], r"field 'choices': is missing"),
    ([_record(choice_contexts=["a", "b"])], r"field 'choices': has 2 entries"),
    ([_record(inputs=[1.0, float("nan")])], r"field 'inputs': has NaN"),
])
def test_bad_records_name_file_line_field_and_fix(tmp_path, records, match):
    path = _write_jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(TaskFileError, match=match) as err:
        load_task(path)
    assert str(path) in str(err.value) and "Fix:" in str(err.value)


def test_bad_parquet_row_names_the_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.Table.from_pylist([_record(id="a"), _record(id="b", gold=5)]),
                   tmp_path / "bad.parquet")
    with pytest.raises(TaskFileError, match=r"bad.parquet: row 1: field 'gold'"):
        load_task(tmp_path / "bad.parquet")


@pytest.mark.parametrize("loader, name, text, message", [
    (load_task, "broken.jsonl", '{"id": 1,\n', r"line 1: invalid JSON"),
    (load_task, "empty.jsonl", "\n\n", r"contains no samples. Fix:"),
    (load_task, "list.jsonl", "[1, 2]\n", r"expected a JSON object"),
    (load_local_task, "task.csv", "id,context\n", r"unsupported file type '.csv'"),
])
def test_invalid_json_empty_file_and_wrong_type(tmp_path, loader, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(TaskFileError, match=message):
        loader(tmp_path / name)


def test_a_missing_task_file_is_named(tmp_path):
    with pytest.raises(TaskFileError, match=r"file not found"):
        load_task(tmp_path / "missing.jsonl")


# -- front door ----------------------------------------------------------------------------------
def test_unknown_task_and_metric_are_clear_errors():
    with pytest.raises(ValueError, match=r"neither a local task file nor a known benchmark"):
        load_task("mmlu_pro")
    with pytest.raises(ValueError, match=r"metric 'f1' is unknown"):
        load_task(FIXTURE, metric="f1")


def test_benchmarks_are_the_hf_tasks():
    assert set(BENCHMARKS) == set(HF_TASKS)


def test_benchmark_without_datasets_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match="pip install datasets"):
        load_task("mmlu")


def test_benchmark_loader_uses_lm_eval_defaults(monkeypatch):
    calls = []
    rows = [{"question": f"q{i}", "choices": {"text": ["x", "y"], "label": ["A", "B"]},
             "answerKey": "B"} for i in range(5)]

    def load_dataset(path, name, split):
        calls.append((path, name, split))
        return rows
    monkeypatch.setitem(sys.modules, "datasets", SimpleNamespace(load_dataset=load_dataset))
    task = load_task("ARC_Challenge", limit=3)
    assert calls == [("allenai/ai2_arc", "ARC-Challenge", "test")]
    assert (task.name, task.metric, task.sample_ids) == ("arc_challenge", "acc_norm",
                                                         ["0", "1", "2"])
    assert load_hf_task("arc_challenge", split="validation", metric="acc").metric == "acc"
    assert calls[-1][2] == "validation"


# -- lm-eval formatting of Hub rows --------------------------------------------------------------
def test_mmlu_prompt():
    row = {"question": "  What is 2 + 2?\n", "subject": "high_school_mathematics",
           "choices": ["3", "4", "5", "6"], "answer": 1}
    sample = mmlu_sample(row, "high_school_mathematics.0")
    assert sample.context == (
        "The following are multiple choice questions (with answers) about high school "
        "mathematics.\n\nWhat is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:")
    assert sample.choices == (" A", " B", " C", " D")
    assert (sample.gold, sample.group) == (1, "high_school_mathematics")


def test_mmlu_ids_count_within_subject():
    rows = [{"subject": s} for s in ("anatomy", "anatomy", "virology", "anatomy")]
    assert sample_ids("mmlu", rows) == ["anatomy.0", "anatomy.1", "virology.0", "anatomy.2"]
    assert sample_ids("winogrande", rows) == ["0", "1", "2", "3"]


def test_hellaswag_prompt_and_preprocess():
    row = {"activity_label": "Removing ice from car",
           "ctx_a": "Then, the man writes over the snow covering the window of a car, and a "
                    "woman wearing winter clothes smiles.",
           "ctx_b": "then",
           "endings": [", the man adds wax to the windshield.", ", a woman is holding a ski.",
                       "Grab a tool [title] Use a scraper.",
                       "  the man  continues  removing the snow."],
           "label": "3"}
    sample = hellaswag_sample(row, "0")
    assert sample.context == (
        "Removing ice from car: Then, the man writes over the snow covering the window of a "
        "car, and a woman wearing winter clothes smiles. Then")
    assert sample.choices == (" , the man adds wax to the windshield.",
                              " , a woman is holding a ski.", " Grab a tool. Use a scraper.",
                              " the man continues removing the snow.")
    assert sample.gold == 3


def test_hellaswag_preprocess_matches_lm_eval():
    text = "How to clean a pan [title] Soak it. [step] Scrub  gently. [header]"
    assert hellaswag_preprocess(text) == "How to clean a pan. Soak it. Scrub gently. "


def test_arc_prompt_with_numeric_labels():
    row = {"question": "Which gas do plants absorb?", "answerKey": "3",
           "choices": {"text": ["oxygen", "nitrogen", "carbon dioxide", "helium"],
                       "label": ["1", "2", "3", "4"]}}
    sample = arc_sample(row, "12")
    assert sample.context == "Question: Which gas do plants absorb?\nAnswer:"
    assert sample.choices == (" oxygen", " nitrogen", " carbon dioxide", " helium")
    assert sample.gold == 2
    with pytest.raises(TaskRowError, match="answerKey"):
        arc_sample({**row, "answerKey": "E"}, "12")


def test_winogrande_partial_evaluation():
    row = {"sentence": "Sarah was a much better surgeon than Maria so _ always got the harder "
                       "cases.", "option1": "Sarah", "option2": "Maria", "answer": "1"}
    sample = winogrande_sample(row, "0")
    prefix = "Sarah was a much better surgeon than Maria so "
    assert sample.requests() == [(prefix + "Sarah", " always got the harder cases."),
                                 (prefix + "Maria", " always got the harder cases.")]
    assert sample.gold == 0 and sample.n_options == 2


def test_unlabelled_split_is_a_clear_error():
    row = {"sentence": "A _ b.", "option1": "x", "option2": "y", "answer": ""}
    with pytest.raises(TaskRowError, match="use the validation split"):
        winogrande_sample(row, "0")
