"""The peer comparison script (examples/benchmarks/peer_comparison.py): its runs of a (stand-in)
peer kit, their reuse, and the table's paired gaps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "benchmarks"))
import peer_comparison as pc  # noqa: E402

FAKE_KIT = '''import argparse, json
p = argparse.ArgumentParser()
for name in ("--peer-code", "--data", "--split", "--seed", "--ks", "--work", "--out"):
    p.add_argument(name)
a = p.parse_args()
with open(a.out, "w") as f:
    for k in a.ks.split(","):
        for m in {methods!r}:
            f.write(json.dumps({{"split": a.split, "seed": int(a.seed), "k": int(k), "method": m,
                                "mae_pp": 1.0 + int(a.seed), "n_test": 3}}) + "\\n")
with open(a.work + ".calls", "a") as f:
    f.write(a.split + a.seed + "\\n")
'''


def kit_args(tmp_path: Path, ks: list[int]) -> argparse.Namespace:
    kit = tmp_path / "kit"
    kit.mkdir(exist_ok=True)
    (kit / "peer_run.py").write_text(FAKE_KIT.format(methods=pc.PEER_METHODS))
    return argparse.Namespace(peer_kit=kit, peer_code=tmp_path, peer_python=sys.executable,
                              ks=ks, out=tmp_path / "out")


def test_peer_runs_once_per_cell_and_again_only_for_a_missing_k(tmp_path: Path) -> None:
    args = kit_args(tmp_path, [25])
    data = tmp_path / "openllm_x.npz"
    path = pc.run_peer(args, data, "top", 1)
    assert path == tmp_path / "out" / "openllm_x_top_s1.jsonl"
    pc.run_peer(args, data, "top", 1)
    calls = tmp_path / "out" / "irt.calls"
    assert calls.read_text().split() == ["top1"]
    args.ks = [25, 100]
    pc.run_peer(args, data, "top", 1)
    assert calls.read_text().split() == ["top1", "top1"]
    frame = pc.peer_per_seed([("openllm_x", path)], [100])
    assert set(frame["k"]) == {100} and set(frame["method"]) == set(pc.PEER_METHODS)
    assert (frame["data"] == "openllm_x").all() and (frame["mae_pp"] == 2.0).all()


def per_seed_frame() -> pd.DataFrame:
    mae = {pc.PEER_GP_IRT: [3.0, 4.0, 5.0], "gp_irt": [3.5, 4.0, 6.0],
           "disco": [1.0, 2.0, 2.0], "jsd_rf": [2.0, 2.0, 2.5]}
    return pd.DataFrame([{"data": "d", "split": "top", "k": 25, "seed": s, "method": m,
                          "mae_pp": v[s]} for m, v in mae.items() for s in range(3)])


def test_table_gives_means_paired_gaps_and_their_standard_errors() -> None:
    table = pc.comparison_table(per_seed_frame(), ["gp_irt", "disco", "jsd_rf"],
                                ["disco", "gp_irt"]).splitlines()
    assert table[0].startswith("| data | split | k | seeds | peer_gp_irt_cal | gp_irt | disco |")
    row = [cell.strip() for cell in table[2].strip("|").split("|")]
    assert row[:8] == ["d", "top", "25", "3", "4.00", "4.50", "**1.67**", "2.17"]
    # disco - jsd_rf per seed: -1, 0, -0.5 -> mean -0.5, SE 0.5 / sqrt(3)
    assert row[8] == "-0.50 (0.29) jsd_rf"
    # disco - peer gp-IRT: -2, -2, -3; gp_irt - disco: 2.5, 2, 4; gp_irt - peer: 0.5, 0, 1
    assert row[9:] == ["-2.33 (0.33)", "+2.83 (0.60) disco", "+0.50 (0.29)"]


def test_held_out_counts_that_differ_from_model_splits_are_refused() -> None:
    peer = pd.DataFrame([{"data": "d", "split": "top", "seed": 0, "n_test": 3}])
    ours = pd.DataFrame({"data": "d", "split": "top", "seed": 0, "model_id": ["a", "b"]})
    with pytest.raises(RuntimeError, match="held out 3 models, model_splits 2"):
        pc.check_held_out(peer, ours)
    pc.check_held_out(peer, pd.concat([ours, ours.assign(model_id="c")]))


def test_the_kit_is_needed_only_to_run_peer_cells(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    def parse(*argv: str) -> argparse.Namespace:
        monkeypatch.setattr(sys, "argv", ["peer_comparison.py", *argv])
        return pc.parse_args()

    with pytest.raises(SystemExit):
        parse("--out", str(tmp_path))
    assert "needs --peer-kit, --peer-code, --peer-python" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--peer-kept-only")
    assert "needs --out" in capsys.readouterr().err
    assert parse("--peer-kept-only", "--out", str(tmp_path)).out == tmp_path.resolve()
    kit = parse("--peer-kit", "kit", "--peer-code", "code", "--peer-python", "py")
    assert kit.out == (Path("kit") / "out").resolve() and kit.peer_code.is_absolute()


def test_the_kept_peer_outputs_cover_every_development_cell() -> None:
    kept = Path(__file__).resolve().parents[1] / "examples" / "benchmarks" / "peer_table"
    paths = [(data, pc.peer_path(kept, Path(f"{data}.npz"), split, seed))
             for data in ("openllm_mmlu", "openllm_arc") for split in ("random", "top")
             for seed in range(5)]
    assert all(pc.holds_ks(path, [25, 100]) for _, path in paths)
    per_seed = pc.peer_per_seed(paths, [25, 100])
    assert len(per_seed) == 20 * 2 * len(pc.PEER_METHODS)
    held_out = per_seed.groupby(["data", "split"])["n_test"].unique()
    assert held_out.map(len).eq(1).all()        # one split size per (data, split)
    cell = per_seed.query("data == 'openllm_mmlu' and split == 'top' and k == 25")
    assert cell[cell["method"] == pc.PEER_GP_IRT]["mae_pp"].mean() == pytest.approx(3.72, abs=0.005)
