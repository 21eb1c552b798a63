"""The kept-predictions check (examples/benchmarks/compare_kept.py): which rerun cells moved."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "benchmarks"))
import compare_kept  # noqa: E402


def _predictions(score_of_m2: float) -> pd.DataFrame:
    """Two methods, one cell, two seeds; only disco's m2 prediction depends on the argument."""
    rows = [("top", 10, method, seed, model, 0.5,
             score_of_m2 if (method, model) == ("disco", "m2") else 0.52)
            for method in ("disco", "gp_irt") for seed in (0, 1) for model in ("m1", "m2")]
    frame = pd.DataFrame(rows, columns=["split", "k", "method", "seed", "model_id", "true",
                                        "score"])
    return frame.assign(lower=frame["score"] - 0.05, upper=frame["score"] + 0.05,
                        out_of_population=False)


def test_only_the_moved_method_shows_a_change(tmp_path):
    kept, rerun = tmp_path / "kept", tmp_path / "rerun"
    kept.mkdir(), rerun.mkdir()
    _predictions(0.52).to_parquet(kept / "demo.parquet")
    _predictions(0.56).to_parquet(rerun / "demo.parquet")
    table = compare_kept.compare(rerun, kept, None).set_index("method")
    assert table.loc["disco", "data"] == "demo"
    assert table.loc["disco", "change_pp"] == pytest.approx(2.0)   # m2: 2 -> 6 pp, m1 stays 2
    assert table.loc["disco", "max_shift_pp"] == pytest.approx(4.0)
    assert table.loc["gp_irt", "change_pp"] == 0.0
    only = compare_kept.compare(rerun, kept, ["gp_irt"])
    assert only["method"].tolist() == ["gp_irt"]


def test_a_folder_without_kept_counterparts_is_a_clear_error(tmp_path):
    (tmp_path / "rerun").mkdir()
    _predictions(0.52).to_parquet(tmp_path / "rerun" / "other.parquet")
    with pytest.raises(SystemExit, match="Fix: point the first argument"):
        compare_kept.compare(tmp_path / "rerun", tmp_path, None)
