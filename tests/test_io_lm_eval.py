"""The lm-eval reader on small logs written as lm-eval 0.4.13 writes them: every target shape,
the full score from the results file, model names, run layouts; and on the logs in
tests/fixtures/lm_eval and hand-written lines: probabilities from the log-likelihoods (acc_norm
included), docs matched by id, bad lines named by file and line, a task logged twice, two runs of
one model name. (`test_lm_eval_harness.py` checks the same against the real lm-eval.)"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from disco_ray.io import read_outputs
from disco_ray.outputs import OutputsError

FIXTURES = Path(__file__).parent / "fixtures"
STAMP = "2026-01-01T00-00-00.000001"


def _row(doc_id: int, target, loglik: list[float], contexts: list[str] | None = None,
         continuations: list[str] | None = None, **metrics) -> dict:
    """A multiple-choice line of `samples_<task>_<date>.jsonl` (target logged as text)."""
    n = len(loglik)
    contexts = contexts or ["Question: ...\nAnswer:"] * n
    continuations = continuations or [f" {'ABCDE'[i]}" for i in range(n)]
    return {"doc_id": doc_id, "doc": {}, "target": str(target),
            "arguments": {f"gen_args_{i}": {"arg_0": c, "arg_1": k}
                          for i, (c, k) in enumerate(zip(contexts, continuations))},
            "filtered_resps": [[str(x), "False"] for x in loglik], "filter": "none",
            "metrics": sorted(metrics), **metrics}


def _run(folder: Path, tasks: dict[str, list[dict]], results: dict | None = None,
         stamp: str = STAMP, results_name: str = "results") -> Path:
    """One lm-eval run's files in `folder`: a samples file per task and the results file."""
    folder.mkdir(parents=True, exist_ok=True)
    for task, rows in tasks.items():
        (folder / f"samples_{task}_{stamp}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows))
    if results is not None:
        (folder / f"{results_name}_{stamp}.json").write_text(json.dumps(results))
    return folder


def _results(model_name: str | None = None, model_args: str = "", **extra) -> dict:
    return {"results": {}, "config": {"model": "hf", "model_args": model_args},
            **({"model_name": model_name} if model_name else {}), **extra}


def test_a_letter_target_names_the_option_by_its_continuation(tmp_path):
    """lm-eval's commonsense_qa style: `target: "C"`, options " A" ... " E"."""
    _run(tmp_path / "m", {"csqa": [_row(0, "C", [-3, -2, -1, -4], acc=1.0),
                                   _row(1, "A", [-3, -1, -2, -4], acc=0.0)]})
    outputs = read_outputs(tmp_path)
    assert outputs.gold.tolist() == [2, 0]
    assert outputs.correct.tolist() == [[1.0, 0.0]]


def test_a_text_target_names_the_option_with_that_text(tmp_path):
    rows = [_row(0, "dog", [-2, -1, -3], continuations=[" cat", " dog", " doge"], acc=1.0)]
    _run(tmp_path / "m", {"t": rows})
    assert read_outputs(tmp_path).gold.tolist() == [1]


def test_a_target_that_is_an_index_and_an_option_text_is_told_by_the_logged_acc(tmp_path):
    """Target "1" with options " 2", " 0", " 1": option 1 by index or option 2 by text; the
    model's top option (2) was right."""
    rows = [_row(0, "1", [-3, -2, -1], continuations=[" 2", " 0", " 1"], acc=1.0)]
    _run(tmp_path / "m", {"t": rows})
    assert read_outputs(tmp_path).gold.tolist() == [2]


def test_one_context_per_option_takes_the_right_option_from_the_models_logged_acc(tmp_path):
    """Winogrande style: the target is the shared continuation; a model's wrong top option
    rules that option out, a right one names it."""
    contexts = ["The cat saw a dog", "The cat saw a bird"]
    wino = dict(contexts=contexts, continuations=[" and ran."] * 2)
    _run(tmp_path / "a", {"wino": [_row(0, "and ran.", [-5.0, -6.0], **wino, acc=0.0,
                                        acc_norm=0.0)]})
    _run(tmp_path / "b", {"wino": [_row(0, "and ran.", [-7.0, -6.0], **wino, acc=1.0,
                                        acc_norm=1.0)]})
    outputs = read_outputs(tmp_path, metric="acc_norm")
    assert outputs.gold.tolist() == [1]
    assert outputs.correct.tolist() == [[0.0], [1.0]]
    # acc_norm divides by each option's text, here its whole context (a zero-shot prompt)
    np.testing.assert_allclose(outputs.probs[0, 0], softmax([-5.0 / 17, -6.0 / 18]), rtol=1e-6)


def test_right_options_the_logs_cannot_tell_leave_the_outputs_without_gold(tmp_path, caplog):
    wino = dict(contexts=["x1", "x22", "x333"], continuations=[" y"] * 3)
    for model in ("a", "b"):
        _run(tmp_path / model, {"w": [_row(0, "y", [-1.0, -2.0, -3.0], **wino, acc=0.0)]})
    with caplog.at_level(logging.WARNING):
        outputs = read_outputs(tmp_path)
    assert outputs.gold is None and outputs.correct.tolist() == [[0.0], [0.0]]
    assert "the right option of 1 of 1 samples cannot be told from the logs" in caplog.text


def test_a_target_contradicting_the_logged_acc_or_another_models_target_is_refused(tmp_path):
    _run(tmp_path / "m", {"t": [_row(0, "C", [-1, -2, -3], acc=1.0)]})
    with pytest.raises(OutputsError, match=r"samples_t_.*\.jsonl:1: field 'target' \(option 2\) "
                                           r"contradicts the logged acc"):
        read_outputs(tmp_path)
    _run(tmp_path / "m", {"t": [_row(0, "C", [-1, -2, -3])]})
    _run(tmp_path / "n", {"t": [_row(0, "B", [-1, -2, -3])]})
    with pytest.raises(OutputsError, match=r"contradicts the logged acc, or another model's "
                                           r"target or acc, of this sample"):
        read_outputs(tmp_path)


def _group_run(folder: Path, outcomes: dict[str, list[float]], group_score: float,
               n_samples: dict | None = None) -> None:
    """A run of group `g` over tasks `g_a` and `g_b`, logging `outcomes` and `group_score`."""
    tasks = {task: [_row(i, 0 if right else 1, [-1.0, -2.0], acc=float(right))
                    for i, right in enumerate(values)] for task, values in outcomes.items()}
    results = _results(f"org/{folder.name}")
    results["results"] = {task: {"acc,none": float(np.mean(v))} for task, v in outcomes.items()}
    results["results"]["g"] = {"acc,none": group_score}
    results["groups"] = {"g": results["results"]["g"]}
    results["group_subtasks"] = {"g": list(outcomes)}
    results["n-samples"] = n_samples or {t: {"original": len(v), "effective": len(v)}
                                         for t, v in outcomes.items()}
    _run(folder, tasks, results)


@pytest.mark.parametrize("group_score, definition", [
    (0.5, "lm-eval's acc of group 'g' from its results file (weighted by subtask size: the "
          "mean over its 4 samples)"),
    (1 / 3, "lm-eval's acc of group 'g' from its results file (the mean of its 2 subtasks' "
            "acc)"),
])
def test_the_full_score_is_lm_evals_group_score(tmp_path, group_score, definition, caplog):
    """2 of 3 right in g_a, 0 of 1 in g_b: size-weighted 0.5, mean of subtasks 1/3."""
    _group_run(tmp_path / "m", {"g_a": [1, 1, 0], "g_b": [0]}, group_score)
    with caplog.at_level(logging.INFO):
        outputs = read_outputs(tmp_path)
    assert outputs.scores().tolist() == [group_score]
    assert outputs.meta["full_score_definition"] == definition
    assert f"full score: {definition}" in caplog.text   # said in the command's output


def test_without_a_group_covering_all_samples_the_full_score_is_the_mean_of_tasks(tmp_path):
    _group_run(tmp_path / "m", {"g_a": [1, 1, 0], "g_b": [0]}, 0.5)
    one = read_outputs(tmp_path, task="g_a")
    assert one.full_score is None and one.scores().tolist() == pytest.approx([2 / 3])
    assert one.meta["full_score_definition"] == "the mean acc over the 3 samples of task 'g_a'"
    _group_run(tmp_path / "partial", {"g_a": [1, 1, 0], "g_b": [0]}, 0.5,
               n_samples={"g_a": {"original": 9, "effective": 3},
                          "g_b": {"original": 1, "effective": 1}})
    partial = read_outputs(tmp_path / "partial")
    assert partial.full_score is None and partial.scores().tolist() == pytest.approx([1 / 3])
    assert partial.meta["full_score_definition"].startswith("the mean of the 2 tasks' acc")


def test_model_names_come_from_the_results_file_then_the_folder(tmp_path):
    rows = {"t": [_row(0, 0, [-1.0, -2.0], acc=1.0)]}
    _run(tmp_path / "__ckpts__step-9000", rows, _results("/ckpts/step-9000"))
    _run(tmp_path / "org__m2", rows, _results(model_args="dtype=float32,pretrained=org/m2"))
    _run(tmp_path / "plain", rows)
    _run(tmp_path / "as_json", rows, _results("org/m4"), results_name="run")   # run.json
    assert read_outputs(tmp_path).model_ids.tolist() == ["/ckpts/step-9000", "org/m2", "org/m4",
                                                         "plain"]


def test_two_folders_naming_one_model_in_their_results_are_refused(tmp_path):
    rows = {"t": [_row(0, 0, [-1.0, -2.0], acc=1.0)]}
    _run(tmp_path / "first", rows, _results("org/m"))
    _run(tmp_path / "second", rows, _results("org/m"))
    with pytest.raises(OutputsError, match=r"folders .*first and .*second both hold lm-eval runs "
                                           r"of model 'org/m'"):
        read_outputs(tmp_path)


def test_runs_of_several_models_in_one_folder_are_told_apart(tmp_path):
    """`--output_path <folder>/out.json` for two models puts both runs' files in one folder."""
    rows = {"t": [_row(0, 0, [-1.0, -2.0], acc=1.0)]}
    _run(tmp_path / "out", rows, _results("org/a"), stamp=STAMP, results_name="out")
    _run(tmp_path / "out", {"t": [_row(0, 0, [-2.0, -1.0], acc=0.0)]}, _results("org/b"),
         stamp="2026-01-02T00-00-00.000001", results_name="out")
    outputs = read_outputs(tmp_path)
    assert outputs.model_ids.tolist() == ["org/a", "org/b"]
    assert outputs.correct.tolist() == [[1.0], [0.0]]


def test_a_damaged_results_file_is_named(tmp_path):
    _run(tmp_path / "m", {"t": [_row(0, 0, [-1.0, -2.0], acc=1.0)]})
    (tmp_path / "m" / f"results_{STAMP}.json").write_text('{"results": {')
    with pytest.raises(OutputsError, match=rf"results_{STAMP}\.json: invalid JSON"):
        read_outputs(tmp_path)


def test_the_full_score_definition_is_stored_with_the_outputs(tmp_path):
    from disco_ray.io import write_outputs

    _group_run(tmp_path / "logs" / "m", {"g_a": [1, 1, 0], "g_b": [0]}, 0.5)
    outputs = read_outputs(tmp_path / "logs")
    back = read_outputs(write_outputs(outputs, tmp_path / "refs.parquet"))
    assert back.meta == outputs.meta == {
        "lm_eval_metric": "acc", "full_score_definition": "lm-eval's acc of group 'g' from its "
        "results file (weighted by subtask size: the mean over its 4 samples)"}
    assert back.full_score.tolist() == [0.5]


# -- the logs in tests/fixtures/lm_eval, and hand-written lines -------------------------------
def test_lm_eval_log_samples_reader():
    outputs = read_outputs(FIXTURES / "lm_eval")
    assert outputs.model_ids.tolist() == ["org__model-a", "org__model-b"]
    assert outputs.sample_ids.tolist()[:2] == ["mmlu_anatomy/0", "mmlu_anatomy/1"]
    assert outputs.probs.shape == (2, 6, 4)
    loglik = np.array([-2.1, -0.4, -3.0, -2.7])
    expected = np.exp(loglik) / np.exp(loglik).sum()
    np.testing.assert_allclose(outputs.probs[0, 0], expected, rtol=1e-6)
    assert outputs.gold.tolist() == [1, 2, 2, 1, 1, 2]
    # model a: anatomy 3/3 right, astronomy 2/3 -> mean of subject accuracies
    np.testing.assert_allclose(outputs.scores()[0], (1.0 + 2 / 3) / 2)
    assert set(outputs.groups) == {"mmlu_anatomy", "mmlu_astronomy"}


def test_lm_eval_acc_norm_divides_by_continuation_length():
    acc = read_outputs(FIXTURES / "lm_eval", task="mmlu_anatomy", metric="acc")
    norm = read_outputs(FIXTURES / "lm_eval", task="mmlu_anatomy", metric="acc_norm")
    # every continuation is " X": lm-eval divides by len("X") = 1, not by 2 with the space
    loglik = np.array([-2.1, -0.4, -3.0, -2.7]) / 1
    np.testing.assert_allclose(norm.probs[0, 0], np.exp(loglik) / np.exp(loglik).sum(),
                               rtol=1e-6)
    assert acc.n_samples == norm.n_samples == 3


def _lm_eval_rows(n: int) -> list[dict]:
    """`n` two-choice docs where the model prefers choice 0, the target."""
    return [{"doc_id": i, "target": 0, "filtered_resps": [["-1", "True"], ["-2", "False"]],
             "acc": 1.0} for i in range(n)]


def _write_log(folder: Path, rows: list, task: str = "t") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"samples_{task}_2024-01-01T00-00-00.jsonl"
    file.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows))
    return file


def test_lm_eval_models_with_different_docs_are_rejected(tmp_path):
    for model, n in (("a", 2), ("b", 3)):
        _write_log(tmp_path / model, _lm_eval_rows(n))
    with pytest.raises(OutputsError, match="'doc_id' differs between models a and b"):
        read_outputs(tmp_path)


def test_lm_eval_docs_logged_in_another_order_are_matched_by_id(tmp_path):
    """lm-eval on several GPUs logs each rank's docs in turn: the order is not the doc order."""
    rows = _lm_eval_rows(3)
    rows[1] = {**rows[1], "target": 1, "acc": 0.0}
    _write_log(tmp_path / "a", rows)
    _write_log(tmp_path / "b", [rows[2], rows[0], rows[1]])
    outputs = read_outputs(tmp_path)
    np.testing.assert_array_equal(outputs.correct, [[1, 0, 1], [1, 0, 1]])
    np.testing.assert_array_equal(outputs.probs[0], outputs.probs[1])


@pytest.mark.parametrize("line, message", [
    ('{"doc_id": 1, "target": 0, "filtered_re', r"t_2024-01-01T00-00-00.jsonl:2: invalid JSON"),
    ({"doc_id": 1, "target": "the answer", "filtered_resps": [["-1", "True"], ["-2", "False"]]},
     r"jsonl:2: field 'target' is 'the answer', neither the index nor the text of one of the 2 "
     r"choices"),
    ({"doc_id": 1, "target": 2, "filtered_resps": [["-1", "True"], ["-2", "False"]]},
     r"jsonl:2: field 'target' is '2', neither the index"),
    ({"doc_id": 0, "target": 0, "filtered_resps": [["-1", "True"], ["-2", "False"]]},
     r"jsonl:2: field 'doc_id': t/0 is logged twice"),
])
def test_a_bad_lm_eval_line_is_named_by_file_and_line(tmp_path, line, message):
    _write_log(tmp_path / "a", [_lm_eval_rows(1)[0], line])
    with pytest.raises(OutputsError, match=message):
        read_outputs(tmp_path)


def test_a_task_logged_twice_in_one_folder_reads_the_later_run(tmp_path, caplog):
    """lm_eval run again with the same --output_path adds a file with a later timestamp."""
    rows = _lm_eval_rows(2)
    _write_log(tmp_path / "a", rows)
    later = {**rows[1], "target": 1, "acc": 0.0}
    (tmp_path / "a" / "samples_t_2024-02-01T00-00-00.jsonl").write_text(
        "\n".join(json.dumps(r) for r in (rows[0], later)))
    with caplog.at_level("WARNING"):
        outputs = read_outputs(tmp_path)
    assert outputs.correct.tolist() == [[1.0, 0.0]]
    assert "task t was logged again; reading the later run samples_t_2024-02-01" in caplog.text


def test_two_runs_of_one_model_name_are_not_merged(tmp_path):
    """Folder names are model ids: two folders of one name would silently become one model."""
    _write_log(tmp_path / "run1" / "org__model", _lm_eval_rows(2))
    _write_log(tmp_path / "run2" / "org__model", _lm_eval_rows(2))
    with pytest.raises(OutputsError, match=r"folders .*run1/org__model and .*run2/org__model "
                                           r"both hold lm-eval runs of model 'org__model'"):
        read_outputs(tmp_path)
