"""The CLI mirrors the Python API; evaluate prints one JSON object per line."""

import json
import subprocess
import sys

import numpy as np

from disco_ray.cli import main
from helpers import synthetic_population


def _npz(tmp_path, outputs):
    path = tmp_path / "data.npz"
    np.savez(path, model_ids=outputs.model_ids, sample_ids=outputs.sample_ids,
             correct=outputs.correct, full_score=outputs.scores().astype(np.float32))
    return path


def test_evaluate_json_lines(tmp_path, capsys):
    path = _npz(tmp_path, synthetic_population(120, 40, with_probs=False))
    code = main(["evaluate", "--data", str(path), "--anchors", "5,10", "--split", "random",
                 "--seeds", "2", "--methods", "random_direct,jsd_rf", "--json", "-q"])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4
    assert {(r["method"], r["k"]) for r in rows} == {(m, k) for m in ("random_direct", "jsd_rf")
                                                   for k in (5, 10)}
    for row in rows:
        assert {"method", "k", "split", "mae_pp", "spearman", "kendall", "max_error_pp",
                "coverage90"} <= set(row)
        assert row["seeds"] == 2 and 0 <= row["mae_pp"] < 30


def test_condense_then_predict(tmp_path, capsys):
    outputs = synthetic_population(60, 40, with_probs=False)
    path = _npz(tmp_path, outputs)
    bench = tmp_path / "bench"
    assert main(["condense", "--data", str(path), "--k", "10", "--method", "jsd_rf",
                 "--output", str(bench), "-q"]) == 0
    assert main(["predict", "--data", str(path), "--benchmark", str(bench), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["model_id"] for r in rows] == outputs.model_ids.tolist()
    assert all(r["lower"] <= r["score"] <= r["upper"] for r in rows)


def test_bad_input_exits_2_with_the_fix(tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    result = subprocess.run([sys.executable, "-m", "disco_ray", "evaluate", "--data", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown file type '.txt'" in result.stderr and "Fix:" in result.stderr
