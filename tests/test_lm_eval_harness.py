"""The lm-eval route against the real lm-evaluation-harness (`lm_eval`, pinned in the
`lm-eval` extra): its own logs of tiny local models on a local task group, read by disco_ray and
taken through the README's commands. Marked `lm_eval`; fails (does not skip) without lm_eval.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from disco_ray.cli import main
from disco_ray.io.benchmark import read_benchmark
from disco_ray.io import read_outputs
from disco_ray.outputs import OutputsError, group_mean
from lm_eval_harness import (EXTRA_TASK, GROUP, GROUP_TASKS, Harness, build_models,
                             logged_lines, right_option, write_tasks)

pytestmark = pytest.mark.lm_eval

REFERENCES = [f"ref{i:02d}" for i in range(10)]
TARGET = "target"
JSON_OUTPUT = "ref03"   # run with --output_path <folder>/run.json: files beside it, no model folder
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Every reference's lm-eval logs (the group in one run, `tinyextra` in a second run into
    the same folder) and the target's full logs, from one lm-eval task index."""
    os.environ.update(OFFLINE)
    root = tmp_path_factory.mktemp("lm_eval")
    docs = write_tasks(root)
    models = build_models(root, REFERENCES + [TARGET])
    harness = Harness(root / "tasks")
    results, extra = {}, {}
    for name in REFERENCES:
        output = root / "refs" / name / "run.json" if name == JSON_OUTPUT else root / "refs"
        results[name] = harness.run(models[name], [GROUP], output)
        extra[name] = harness.run(models[name], [EXTRA_TASK], output)
    results[TARGET] = harness.run(models[TARGET], [GROUP], root / "target_full")
    return SimpleNamespace(root=root, refs=root / "refs", docs=docs, harness=harness,
                           models=models, results=results, extra=extra,
                           ids=sorted(str(models[name]) for name in REFERENCES),
                           name={str(path): name for name, path in models.items()})


def _model_folders(folder: Path) -> dict[str, Path]:
    """{model_name: folder} from the lm-eval results files under `folder`."""
    return {json.loads(f.read_text())["model_name"]: f.parent for f in folder.rglob("*.json")}


@pytest.mark.parametrize("metric", ["acc", "acc_norm"])
def test_outcomes_and_right_options_are_lm_evals_for_every_target_shape(logs, metric):
    """Index, letter (`target: "C"`), text and one-context-per-option targets: the outcome read
    is lm-eval's logged metric, the right option read is the dataset's, and the probabilities
    with it reproduce lm-eval's metric."""
    outputs = read_outputs(logs.refs, task=GROUP, metric=metric)
    assert outputs.model_ids.tolist() == logs.ids
    position = {sid: i for i, sid in enumerate(outputs.sample_ids)}
    expected_gold = [right_option(sid.split("/")[0], logs.docs[sid.split("/")[0]][int(doc)])
                     for sid, doc in ((s, s.split("/")[1]) for s in outputs.sample_ids)]
    assert outputs.gold.tolist() == expected_gold
    folders = _model_folders(logs.refs)
    checked = 0
    for m, model in enumerate(outputs.model_ids):
        for task in GROUP_TASKS:
            for line in logged_lines(folders[model], task):
                i = position[f"{task}/{line['doc_id']}"]
                assert outputs.correct[m, i] == line[metric]
                assert float(np.argmax(outputs.probs[m, i]) == outputs.gold[i]) == line[metric]
                checked += 1
    assert checked == len(REFERENCES) * outputs.n_samples == 10 * 110
    # the tiny models differ: outcomes are not one column repeated
    assert len({row.tobytes() for row in outputs.correct}) == len(REFERENCES)


@pytest.mark.parametrize("metric", ["acc", "acc_norm"])
def test_full_scores_are_lm_evals_size_weighted_group_score(logs, metric):
    outputs = read_outputs(logs.refs, task=GROUP, metric=metric)
    reported = [logs.results[logs.name[model]]["results"][GROUP][f"{metric},none"]
                for model in outputs.model_ids]
    np.testing.assert_allclose(outputs.scores(), reported, rtol=0, atol=1e-12)
    # weight_by_size: the mean over the group's samples, not the mean of its subtasks' scores
    np.testing.assert_allclose(outputs.scores(), outputs.correct.mean(axis=1), atol=1e-6)
    assert np.abs(outputs.scores() - group_mean(outputs.correct, outputs.groups)).max() > 0.01
    assert outputs.meta["full_score_definition"] == (
        f"lm-eval's {metric} of group 'tinymc' from its results file (weighted by subtask "
        "size: the mean over its 110 samples)")


def test_several_runs_per_folder_and_a_json_output_path(logs):
    """Each folder holds two runs (the group, then `tinyextra`); one reference was run with
    `--output_path <folder>/run.json`. Model names come from the results files, not folders."""
    beside = logs.refs / JSON_OUTPUT
    assert len(list(beside.glob("run_*.json"))) == 2
    assert not any(path.is_dir() for path in beside.iterdir())
    assert len(list(beside.glob("samples_*.jsonl"))) == len(GROUP_TASKS) + 1
    outputs = read_outputs(logs.refs)
    assert outputs.model_ids.tolist() == logs.ids
    assert sorted(set(outputs.groups)) == sorted(GROUP_TASKS + (EXTRA_TASK,))
    # no group covers the five tasks: the mean of their scores, as lm-eval reports each
    per_task = [[{**logs.results[logs.name[m]]["results"],
                  **logs.extra[logs.name[m]]["results"]}[task]["acc,none"]
                 for task in GROUP_TASKS + (EXTRA_TASK,)] for m in outputs.model_ids]
    # (computed from float32 outcomes: equal to float32 precision)
    np.testing.assert_allclose(outputs.scores(), np.mean(per_task, axis=1), atol=1e-6)
    assert outputs.meta["full_score_definition"].startswith("the mean of the 5 tasks' acc")


def test_two_folders_naming_one_model_are_refused(logs, tmp_path):
    folder = _model_folders(logs.refs)[logs.ids[0]]
    shutil.copytree(folder, tmp_path / "first" / folder.name)
    shutil.copytree(folder, tmp_path / "second" / folder.name)
    with pytest.raises(OutputsError, match=f"both hold lm-eval runs of model '{logs.ids[0]}'"):
        read_outputs(tmp_path)


def _condense_and_list_anchors(logs, tmp_path, capsys, metric: str):
    bench = tmp_path / "bench"
    assert main(["condense", "--data", str(logs.refs), "--task", GROUP, "--metric", metric,
                 "--k", "12", "--output", str(bench), "-q"]) == 0
    references = read_benchmark(bench).references
    assert references.meta["lm_eval_metric"] == metric   # stored with the benchmark
    assert "weighted by subtask size" in references.meta["full_score_definition"]
    np.testing.assert_allclose(
        references.full_score,
        [logs.results[logs.name[m]]["results"][GROUP][f"{metric},none"]
         for m in references.model_ids], atol=1e-12)
    anchors = tmp_path / "anchors.json"
    assert main(["anchors", "--benchmark", str(bench), "--format", "lm-eval-samples",
                 "--output", str(anchors)]) == 0
    capsys.readouterr()
    assert main(["anchors", "--benchmark", str(bench), "--format", "lm-eval-tasks"]) == 0
    tasks = capsys.readouterr().out.strip()
    selection = json.loads(anchors.read_text())
    assert tasks == ",".join(selection) and sum(map(len, selection.values())) == 12
    return bench, anchors, tasks, selection


def _predict_both_ways(logs, bench, anchors_out, selection, capsys, metric: str):
    """The target's anchors-only logs ran exactly the anchors and predict as its full logs."""
    for task, doc_ids in selection.items():
        assert [line["doc_id"] for line in logged_lines(anchors_out, task)] == doc_ids
    predicted = {}
    for name, data in (("anchors", anchors_out), ("full", logs.root / "target_full")):
        assert main(["predict", "--data", str(data), "--benchmark", str(bench), "--metric",
                     metric, "--json", "-q"]) == 0
        [predicted[name]] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert predicted["anchors"]["model_id"] == str(logs.models[TARGET])
    # lm-eval batches the anchors alone differently: log-likelihoods differ in the last digits
    assert predicted["anchors"]["score"] == pytest.approx(predicted["full"]["score"], abs=1e-6)
    assert 0.0 <= predicted["anchors"]["lower"] <= predicted["anchors"]["upper"] <= 1.0


def test_readme_route_through_the_lm_eval_command(logs, tmp_path, capsys):
    """condense -> anchors -> `lm_eval ... --samples anchors.json` (the command itself) ->
    predict, with acc."""
    bench, anchors, tasks, selection = _condense_and_list_anchors(logs, tmp_path, capsys, "acc")
    out = tmp_path / "target_anchors"
    command = [str(Path(sys.executable).with_name("lm_eval")), "--model", "hf", "--model_args",
               f"pretrained={logs.models[TARGET]},dtype=float32", "--tasks", tasks,
               "--include_path", str(logs.root / "tasks"), "--samples", str(anchors),
               "--log_samples", "--output_path", str(out), "--device", "cpu",
               "--batch_size", "16"]
    run = subprocess.run(command, env={**os.environ, **OFFLINE}, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    [folder] = out.iterdir()
    _predict_both_ways(logs, bench, folder, selection, capsys, "acc")


def test_readme_route_with_acc_norm(logs, tmp_path, capsys):
    """The same route read with acc_norm, the anchors run by lm-eval's evaluator in-process."""
    bench, _, tasks, selection = _condense_and_list_anchors(logs, tmp_path, capsys, "acc_norm")
    out = tmp_path / "target_anchors"
    logs.harness.run(logs.models[TARGET], tasks.split(","), out, samples=selection)
    [folder] = out.iterdir()
    _predict_both_ways(logs, bench, folder, selection, capsys, "acc_norm")
