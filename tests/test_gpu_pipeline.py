"""The Ray pipeline on a real GPU: the one-GPU smoke run against the CPU smoke run.

Both run through the CLI in a subprocess (each starts its own local Ray, the way a user runs
them), on the same in-code tiny GPT-2s. Skipped without CUDA.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ray")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

ROOT = Path(__file__).resolve().parents[1]


def _run(config: str, output: Path) -> dict:
    subprocess.run([sys.executable, "-m", "disco_ray", "run", str(ROOT / "configs" / config),
                    "--output", str(output), "--quiet"], check=True, cwd=ROOT, timeout=600)
    return json.loads((output / "run.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, dict, Path, dict]:
    base = tmp_path_factory.mktemp("smoke")
    cpu, gpu = base / "cpu", base / "gpu"
    return cpu, _run("smoke_llm_cpu.yaml", cpu), gpu, _run("smoke_llm_gpu.yaml", gpu)


def test_every_model_actor_held_a_gpu_share(runs):
    _, cpu_run, _, gpu_run = runs
    assert not gpu_run["failed"] and len(gpu_run["models"]) == 8
    assert all(m["gpu_ids"] for m in gpu_run["models"].values())
    assert not any(m["gpu_ids"] for m in cpu_run["models"].values())


def test_gpu_outputs_and_predictions_match_the_cpu_run(runs):
    cpu, _, gpu, _ = runs
    for part in sorted((cpu / "outputs").glob("*/*.parquet")):
        a = pd.read_parquet(part)
        b = pd.read_parquet(gpu / part.relative_to(cpu))
        probs_a, probs_b = (np.concatenate(list(t["probs"])) for t in (a, b))
        np.testing.assert_allclose(probs_b, probs_a, atol=1e-3)
    pred_a = pd.read_csv(cpu / "predictions.csv").set_index("model_id")
    pred_b = pd.read_csv(gpu / "predictions.csv").set_index("model_id")
    np.testing.assert_allclose(pred_b[["score", "lower", "upper", "true_score"]],
                               pred_a[["score", "lower", "upper", "true_score"]], atol=2e-3)
