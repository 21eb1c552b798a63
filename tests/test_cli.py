"""The CLI mirrors the Python API; evaluate prints one JSON object per line."""

import contextlib
import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import pandas as pd
from matplotlib.image import imread

from disco_ray.cli import main
from disco_ray.report.plots import evaluation_figure
from helpers import CLUSTER, README, code_blocks, synthetic_population


def _npz(tmp_path, outputs):
    path = tmp_path / "data.npz"
    np.savez(path, model_ids=outputs.model_ids, sample_ids=outputs.sample_ids,
             correct=outputs.correct, full_score=outputs.scores().astype(np.float32))
    return path


def _reject(token):
    raise ValueError(f"not strict JSON: {token}")


def test_evaluate_json_lines(tmp_path, capsys):
    path = _npz(tmp_path, synthetic_population(120, 40, with_probs=False))
    code = main(["evaluate", "--data", str(path), "--anchors", "5,10", "--split", "random",
                 "--seeds", "2", "--methods", "random_direct,jsd_rf", "--json", "-q",
                 "--output", str(tmp_path / "table.csv"), "--plot", str(tmp_path / "k.png"),
                 "--predictions", str(tmp_path / "held_out.parquet")])
    assert code == 0
    held_out = pd.read_parquet(tmp_path / "held_out.parquet")
    assert len(held_out) == 2 * 2 * 2 * 24   # k x methods x seeds x 20% of 120 models
    assert (held_out["lower"] <= held_out["score"]).all()
    assert (held_out["score"] <= held_out["upper"]).all()
    height, width = imread(tmp_path / "k.png").shape[:2]
    assert height > 300 and width > 300
    assert len(pd.read_csv(tmp_path / "table.csv")) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz", "held_out.parquet", "k.png",
                                                          "table.csv"]
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line, parse_constant=_reject) for line in lines]
    assert len(rows) == 4
    assert {(r["method"], r["k"]) for r in rows} == {
        (m, k) for m in ("random_direct", "jsd_rf") for k in (5, 10)}
    for row in rows:
        assert {"method", "k", "split", "mae_pp", "spearman", "kendall", "max_error_pp",
                "coverage90"} <= set(row)
        assert row["seeds"] == 2 and 0 <= row["mae_pp"] < 30
    assert main(["evaluate", "--data", str(path), "--anchors", "5", "--seeds", "1",
                 "--methods", "random_direct", "-q"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    # a plain count of held-out models; no empty gap columns without a disco* method
    assert dict(zip(header.split(), row.split()))["n"] == "24"
    assert "gap±se" not in header and "best" not in header


def test_the_evaluate_table_fits_120_columns_and_its_help_explains_each(capsys):
    from disco_ray.report.tables import EVALUATION_COLUMNS, evaluation_text

    widest = {"split": "chronological", "k": 1000, "method": "disco_frontier",
              "n_held_out": 8560.0, "mae_pp": 12.345, "max_error_pp": 88.8, "spearman": -0.123,
              "kendall": 0.5, "coverage90": 0.9, "width90_pp": 100.0, "ood_rate": 0.123,
              "frontier_rate": 0.5, "mae_pp_std": 10.5, "seeds": 5,
              "best_baseline": "random_gp_irt", "gap_pp": -10.123, "gap_se_pp": 1.5,
              "coverage90_lo": 0.85, "coverage90_hi": 0.95}
    text = evaluation_text(pd.DataFrame([widest, {**widest, "method": "gp_irt",
                                                  "best_baseline": None, "gap_pp": None}]))
    header, disco, baseline = text.splitlines()
    assert max(map(len, (header, disco, baseline))) <= 120
    assert header.split() == [name for name, _ in EVALUATION_COLUMNS]
    assert disco.split()[4] == "12.35±10.50" and disco.split()[-2:] == ["-10.12±1.50",
                                                                        "random_gp_irt"]
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = capsys.readouterr().out
    for name, meaning in EVALUATION_COLUMNS:
        assert f"  {name:<7} {meaning.split()[0]}" in help_text


def test_condense_then_predict(tmp_path, capsys, caplog):
    outputs = synthetic_population(60, 40, with_probs=False)
    path = _npz(tmp_path, outputs)
    bench = tmp_path / "bench"
    with caplog.at_level("INFO", logger="disco_ray"):
        assert main(["condense", "--data", str(path), "--k", "10", "--method", "jsd_rf",
                     "--output", str(bench)]) == 0
    # one readable line: no fitted parameters (IRT items, anchor weights) in the log
    [message] = caplog.messages
    assert re.fullmatch(r"condensed 40 samples to 10 anchors \(top-jsd\), metamodel rf, "
                        r"reference CV MAE \d+\.\d\d pp \(method jsd_rf\) -> " + re.escape(
                            str(bench)), message)
    assert main(["predict", "--data", str(path), "--benchmark", str(bench), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["model_id"] for r in rows] == outputs.model_ids.tolist()
    assert all(r["lower"] <= r["score"] <= r["upper"] for r in rows)
    # the strongest references' own intervals reach above the best reference's score
    assert any(r["at_frontier"] for r in rows)
    assert not any(r["at_frontier"] and r["out_of_population"] for r in rows)
    assert main(["predict", "--data", str(path), "--benchmark", str(bench)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "predicted", "90%", "interval", "flag"]
    for row, line in zip(rows, lines[1:len(rows) + 1], strict=True):
        assert line.split()[:2] == [row["model_id"], f"{100 * row['score']:.1f}%"]
        assert line.endswith("AT FRONTIER") == row["at_frontier"]
        assert line.endswith("OUT OF POPULATION") == row["out_of_population"]
    frontier = [r["model_id"] for r in rows if r["at_frontier"]]
    assert lines[-1] == "  " + ", ".join(frontier)   # named again below the table


def test_condense_takes_anchor_designs(tmp_path, capsys):
    """--designs replaces the method's designs: guiding subsets and stratified selection."""
    from disco_ray.design import AnchorDesign
    from disco_ray.io.benchmark import read_benchmark

    path = _npz(tmp_path, synthetic_population(40, 40))
    assert main(["condense", "--data", str(path), "--k", "8", "--method", "jsd_rf", "--designs",
                 "top-jsd@10,random", "--output", str(tmp_path / "b")]) == 0
    bench = read_benchmark(tmp_path / "b")
    assert bench.settings.designs == (AnchorDesign("top", "jsd", 10),
                                      AnchorDesign("random"))
    assert bench.design in bench.settings.designs
    with pytest.raises(SystemExit) as exit_:
        main(["condense", "--data", str(path), "--designs", "top-xyz", "--output", "b"])
    assert exit_.value.code == 2
    assert "unknown anchor design top-xyz. Fix: use random, " in capsys.readouterr().err


def test_bad_input_exits_2_with_the_fix(tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    result = subprocess.run([sys.executable, "-m", "disco_ray", "evaluate", "--data", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown file type '.txt'" in result.stderr and "Fix:" in result.stderr


def test_evaluation_figure_draws_every_method_per_split():
    summary = pd.DataFrame([{"split": split, "k": k, "method": method,
                             "mae_pp": base + 10 / k, "coverage90": 0.9}
                            for split in ("random", "top") for k in (10, 25, 50)
                            for method, base in (("disco", 1.0), ("gp_irt", 2.0))])
    figure = evaluation_figure(summary, "data")
    axes = figure.axes
    assert [ax.get_title() for ax in axes[:2]] == ["split: random", "split: top"]
    for ax in axes[:2]:   # MAE panels: one line per method, in the table's values
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"disco", "gp_irt"}
        assert np.allclose(lines["gp_irt"].get_ydata(), [2 + 10 / k for k in (10, 25, 50)])
        assert lines["disco"].get_linewidth() > lines["gp_irt"].get_linewidth()
    for ax in axes[2:]:   # coverage panels
        assert all(np.allclose(line.get_ydata(), 0.9) for line in ax.get_lines())
        # the k axis is labelled at the k values only (no '2x10^1' minor labels)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "25", "50"]
        assert ax.get_xticklabels(minor=True) == []
    # with the coverage's confidence interval, a bar per k for the disco* methods only
    bars = evaluation_figure(summary.assign(coverage90_lo=0.8, coverage90_hi=0.97)).axes[2]
    [segments] = [c.get_segments() for c in bars.collections if c.get_segments()]
    assert [(s[0][1], s[1][1]) for s in segments] == [(0.8, 0.97)] * 3


def test_bad_arguments_are_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """A typo in a method, seeds < 1, k beyond the samples, --address without --workers,
    --workers without Ray installed or an output folder of the user's files stop the command
    before any condense runs (which can take minutes) or Ray starts, and nothing of the user's
    is touched."""
    import disco_ray.distributed.session
    import disco_ray.search

    def no_condense(*args, **kwargs):
        raise AssertionError("condense or Ray ran before the arguments were checked")

    monkeypatch.setattr(disco_ray.search, "condense", no_condense)
    path = _npz(tmp_path, synthetic_population(30, 20, with_probs=False))
    for argv, message in (
            (["evaluate", "--methods", "random_direct,disko"], "unknown method 'disko'"),
            (["evaluate", "--seeds", "0"], "expected an integer >= 1, got '0'"),
            (["condense", "--seed", "-1", "--output", str(tmp_path / "b")],
             "expected an integer >= 0, got '-1'")):
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--data", str(path)])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    monkeypatch.setattr(disco_ray.distributed.session, "ray_session", no_condense)
    assert main(["evaluate", "--data", str(path), "--workers", "2", "--anchors", "500"]) == 2
    assert "k=500 anchors requested" in capsys.readouterr().err   # and no Ray started
    assert main(["evaluate", "--data", str(path), "--anchors", "5", "--address", "auto"]) == 2
    assert "Fix: add --workers N" in capsys.readouterr().err
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else find_spec(name, *a))
    assert main(["evaluate", "--data", str(path), "--anchors", "5", "--workers", "2"]) == 2
    assert "pip install 'disco-ray[ray]'" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["condense", "--data", str(path), "--k", "5", "--output", str(mine)]) == 2
    assert "holds no condensed.json" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"


def test_where_evaluate_runs_its_cells(monkeypatch):
    """One worker: here (an http $RAY_ADDRESS, the job API's, is no cluster to join). More: Ray,
    at the given address or a local one, with that many cells in flight."""
    import disco_ray.distributed.session as session
    from disco_ray.distributed.evaluation import cell_runner, run_cells_on_ray
    from disco_ray.evaluation import run_cells_in_process

    opened = []
    monkeypatch.setattr(session, "ray_session", lambda *args: opened.append(args)
                        or contextlib.nullcontext())
    with cell_runner(None, 1, quiet=True) as runner:
        assert runner is run_cells_in_process
    with cell_runner("10.0.0.5:6379", 8, quiet=True) as runner:
        assert runner.func is run_cells_on_ray and runner.keywords == {"max_in_flight": 8}
    with cell_runner(None, 3, quiet=False):
        pass
    assert opened == [("10.0.0.5:6379", 8, True), (None, 3, False)]
    with pytest.raises(ValueError, match="Fix: add --workers N"):
        with cell_runner("auto", 1, quiet=True):
            pass
    for value, expected in (("http://127.0.0.1:8265", None), ("https://ray.example", None),
                            ("10.0.0.5:6379", "10.0.0.5:6379"), ("", None)):
        monkeypatch.setenv("RAY_ADDRESS", value)
        assert session.address_from_env() == expected


def _write_lm_eval_logs(folder, outputs, docs=None):
    """lm-eval --log_samples files, one folder per model, a task per group; `docs` restricts
    the logged docs as `lm_eval --samples` does (ids logged as given, tasks left out not run)."""
    tasks = {}
    for sample, group in zip(outputs.sample_ids, outputs.groups):
        tasks.setdefault(f"mmlu_{group}", []).append(sample)
    for m, model in enumerate(outputs.model_ids):
        (folder / model).mkdir(parents=True)
        for task, samples in tasks.items():
            doc_ids = range(len(samples)) if docs is None else docs.get(task, [])
            rows = []
            for doc_id in doc_ids:
                i = outputs.sample_index([samples[doc_id]])[0]
                rows.append({"doc_id": doc_id, "target": int(outputs.gold[i]),
                             "arguments": {f"gen_args_{c}": {"arg_0": "Q:", "arg_1": f" {c}"}
                                           for c in range(len(outputs.probs[m, i]))},
                             "filtered_resps": [[str(np.log(p)), "False"]
                                                for p in outputs.probs[m, i]],
                             "acc": float(outputs.correct[m, i])})
            if rows:
                (folder / model / f"samples_{task}_2026-01-01T00-00-00.jsonl").write_text(
                    "\n".join(json.dumps(r) for r in rows))


def test_lm_eval_anchors_round_trip(tmp_path, capsys):
    """Condense lm-eval logs, run only the anchors (`--samples`), predict as from the full logs."""
    population = synthetic_population(61, 48)
    refs, target = population.take_models(list(range(60))), population.take_models([60])
    _write_lm_eval_logs(tmp_path / "refs", refs)
    bench = tmp_path / "bench"
    assert main(["condense", "--data", str(tmp_path / "refs"), "--k", "8", "--method", "jsd_rf",
                 "--output", str(bench), "-q"]) == 0
    capsys.readouterr()
    assert main(["anchors", "--benchmark", str(bench)]) == 0
    anchor_ids = capsys.readouterr().out.split()
    assert len(anchor_ids) == 8 and all(re.fullmatch(r"mmlu_subject\d/\d+", a) for a in anchor_ids)
    samples = tmp_path / "anchors.json"
    assert main(["anchors", "--benchmark", str(bench), "--format", "lm-eval-samples",
                 "--output", str(samples)]) == 0
    selection = json.loads(samples.read_text())
    assert sorted(f"{t}/{d}" for t, docs in selection.items() for d in docs) == sorted(anchor_ids)
    assert all(docs == sorted(docs) for docs in selection.values())   # lm-eval#4089
    assert main(["anchors", "--benchmark", str(bench), "--format", "lm-eval-tasks"]) == 0
    assert capsys.readouterr().out == ",".join(sorted(selection)) + "\n"

    _write_lm_eval_logs(tmp_path / "full", target)
    _write_lm_eval_logs(tmp_path / "anchors_only", target, docs=selection)
    predicted = {}
    for name in ("full", "anchors_only"):
        assert main(["predict", "--data", str(tmp_path / name), "--benchmark", str(bench),
                     "--json"]) == 0
        [predicted[name]] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert predicted["anchors_only"]["score"] == pytest.approx(predicted["full"]["score"], abs=1e-9)
    # the benchmark remembers the metric its logs were read with (through its Parquet file)
    assert main(["predict", "--data", str(tmp_path / "full"), "--benchmark", str(bench),
                 "--metric", "acc_norm"]) == 2
    assert ("read with metric 'acc_norm', the references with 'acc'. Fix: read them with "
            "--metric acc" in capsys.readouterr().err)


def test_anchors_in_lm_eval_format_need_lm_eval_ids(tmp_path, capsys):
    from disco_ray.io import lm_eval_samples

    assert lm_eval_samples(["b/10", "a/3", "b/2"]) == {"a": [3], "b": [2, 10]}
    outputs = synthetic_population(60, 30, with_probs=False)
    bench = tmp_path / "bench"
    assert main(["condense", "--data", str(_npz(tmp_path, outputs)), "--k", "5", "--method",
                 "jsd_rf", "--output", str(bench), "-q"]) == 0
    assert main(["anchors", "--benchmark", str(bench), "--format", "lm-eval-samples"]) == 2
    assert "sample id 'q" in capsys.readouterr().err


def test_the_readmes_commands_parse():
    """Every disco-ray command in the READMEs' shell blocks and API table is valid CLI."""
    from disco_ray.cli import build_parser

    readme = README.read_text() + (CLUSTER / "README.md").read_text()
    shell = "\n".join(code_blocks(readme, "bash")).replace("\\\n", " ")
    commands = re.findall(r"(?:^|\$\(|&& |python -m )disco[-_]ray ([^#\n)\"]*)", shell, re.M)
    commands += re.findall(r"^\| `disco-ray ([^`]*)` \|", readme, re.M)
    assert len(commands) >= 10 and any("--seeds 5 --workers 64 --pred" in c
                                       for c in commands)   # cluster/README.md's evaluate
    for command in commands:
        build_parser().parse_args(command.split())   # exits (fails the test) on a bad command
