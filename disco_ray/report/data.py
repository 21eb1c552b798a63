"""What a report reads from a run's output directory (layout: configs/README.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from disco_ray.outputs import ModelOutputs, OutputsError


@dataclass(frozen=True)
class RunOutput:
    """A finished run: predictions, run facts and the condensed benchmark's anchors.

    Attributes:
        output_dir: the run's output directory.
        predictions: one dict per target (contract fields of predictions.json).
        run: the contents of run.json.
        condensed: the condensed benchmark's manifest (settings, choice, anchor_ids).
        sample_ids: every benchmark sample, in the disagreement file's order.
        disagreement: per-sample disagreement score, aligned with `sample_ids`.
    """

    output_dir: Path
    predictions: list[dict]
    run: dict
    condensed: dict
    sample_ids: np.ndarray
    disagreement: np.ndarray

    @property
    def anchor_mask(self) -> np.ndarray:
        """[N] True where the sample is an anchor."""
        return np.isin(self.sample_ids, self.condensed["anchor_ids"])

    @property
    def condensed_k(self) -> int:
        return len(self.condensed["anchor_ids"])

    @property
    def has_true_scores(self) -> bool:
        return any(p.get("true_score") is not None for p in self.predictions)

    @property
    def references_dir(self) -> Path:
        return self.output_dir / "outputs" / "references"


def _read_json(path: Path) -> dict | list:
    if not path.is_file():
        raise OutputsError(f"{path}: not found. Fix: point at the output directory of a "
                           "finished `disco-ray run`")
    return json.loads(path.read_text())


def load_run(output_dir: str | Path) -> RunOutput:
    """Read predictions.json, run.json and condensed/ of a run."""
    output_dir = Path(output_dir)
    condensed_dir = output_dir / "condensed"
    manifest = _read_json(condensed_dir / "condensed.json")
    with np.load(condensed_dir / "disagreement.npz", allow_pickle=False) as data:
        sample_ids, scores = data["sample_ids"].astype(str), data["scores"].astype(np.float64)
    return RunOutput(output_dir, list(_read_json(output_dir / "predictions.json")),
                     dict(_read_json(output_dir / "run.json")), manifest, sample_ids, scores)


def reference_outputs(result: RunOutput) -> ModelOutputs | None:
    """The reference models' full-task outputs, or None when the run kept none."""
    from disco_ray.io import read_outputs

    if not result.references_dir.is_dir() or not any(result.references_dir.glob("*.parquet")):
        return None
    return read_outputs(result.references_dir)
