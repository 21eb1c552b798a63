"""The run directory: the one owner of what `disco-ray run` writes and its report reads.

Layout (configs/README.md): `outputs/references/` and `outputs/targets/` (cached model outputs),
`condensed/` (the condensed benchmark, `io.benchmark`), `predictions.json` and `.csv`,
`run.json` (the run's facts), `analysis.json` and `analysis.npz` (what the report draws: the
anchor curve, the references' anchor accuracy and scores, per-sample disagreement), and the
report's `report.html` and `report.json`. Every file is written atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from disco_ray.io.atomic import atomic_path
from disco_ray.outputs import OutputsError

OUTPUTS = "outputs"
CONDENSED = "condensed"
PREDICTIONS = "predictions.json"
PREDICTIONS_CSV = "predictions.csv"
RUN_INFO = "run.json"
ANALYSIS = "analysis.json"
ANALYSIS_ARRAYS = "analysis.npz"
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
# what an earlier (or interrupted) run leaves; models/: a factory's (the smoke configs')
RUN_MARKERS = (RUN_INFO, OUTPUTS, CONDENSED, "models")


@dataclass(frozen=True)
class RunRecord:
    """A finished run as the report sees it.

    Attributes:
        output_dir: the run's output directory.
        predictions: one dict per target (the fields of predictions.json).
        run: the contents of run.json.
        analysis: the contents of analysis.json (`benchmark`, `anchor_curve`, `references`,
            `disagreement`), or None when the run stored none.
        sample_ids: every benchmark sample, in analysis.npz's order.
        disagreement: per-sample disagreement score, aligned with `sample_ids`.
        anchor_mask: True where the sample is an anchor.
    """

    output_dir: Path
    predictions: list[dict]
    run: dict
    analysis: dict | None
    sample_ids: np.ndarray
    disagreement: np.ndarray
    anchor_mask: np.ndarray

    @property
    def has_true_scores(self) -> bool:
        return any(p.get("true_score") is not None for p in self.predictions)


@dataclass(frozen=True)
class RunDirectory:
    """Paths of a run directory and the writers and readers of its files."""

    path: Path

    def outputs(self, group: str) -> Path:
        """The cached output parts of `references` or `targets`."""
        return self.path / OUTPUTS / group

    @property
    def condensed(self) -> Path:
        return self.path / CONDENSED

    def is_earlier_run(self) -> bool:
        """Whether the directory holds something a run writes (`RUN_MARKERS`)."""
        return any((self.path / name).exists() for name in RUN_MARKERS)

    def write_predictions(self, rows: list[dict], columns: Sequence[str]) -> None:
        """predictions.json and predictions.csv (the same table)."""
        import pandas as pd

        write_json(self.path / PREDICTIONS, rows)
        with atomic_path(self.path / PREDICTIONS_CSV) as tmp:
            pd.DataFrame(rows, columns=list(columns)).to_csv(tmp, index=False)

    def write_info(self, info: dict) -> None:
        write_json(self.path / RUN_INFO, info)

    def write_analysis(self, analysis: dict, sample_ids: Sequence[str],
                       disagreement: np.ndarray, anchor_mask: np.ndarray) -> None:
        """analysis.json and analysis.npz (per-sample arrays, without pickle)."""
        with atomic_path(self.path / ANALYSIS_ARRAYS) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, sample_ids=np.asarray(sample_ids, dtype=str),
                         disagreement=np.asarray(disagreement, dtype=np.float64),
                         anchor_mask=np.asarray(anchor_mask, dtype=bool))
        write_json(self.path / ANALYSIS, analysis)

    def write_report(self, page: str, report: dict) -> Path:
        """report.html and report.json; returns the HTML's path."""
        with atomic_path(self.path / REPORT_HTML) as tmp:
            tmp.write_text(page, encoding="utf-8")
        write_json(self.path / REPORT_JSON, report)
        return self.path / REPORT_HTML

    def read(self) -> RunRecord:
        """The run as the report sees it, with a clear error for a directory no run finished."""
        predictions = list(_read_json(self._file(PREDICTIONS)))
        run = dict(_read_json(self._file(RUN_INFO)))
        if not (self.path / ANALYSIS).is_file():
            empty = np.zeros(0)
            return RunRecord(self.path, predictions, run, None, empty.astype(str), empty,
                             empty.astype(bool))
        with self._file(ANALYSIS_ARRAYS).open("rb") as handle, \
                np.load(handle, allow_pickle=False) as arrays:
            sample_ids, disagreement, mask = (arrays["sample_ids"].astype(str),
                                              arrays["disagreement"], arrays["anchor_mask"])
        return RunRecord(self.path, predictions, run, dict(_read_json(self._file(ANALYSIS))),
                         sample_ids, disagreement, mask)

    def _file(self, name: str) -> Path:
        path = self.path / name
        if not path.is_file():
            raise OutputsError(f"{path}: not found. Fix: point at the output directory of a "
                               "finished `disco-ray run`")
        return path


def read_run(output_dir: str | Path) -> RunRecord:
    """A finished run's predictions, facts and analysis."""
    return RunDirectory(Path(output_dir)).read()


def write_json(path: Path, data: Any) -> None:
    """`data` as indented JSON, atomically (numpy scalars and paths as plain values)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise OutputsError(f"{path}: invalid JSON ({err}). Fix: run again (disco-ray writes "
                           "this file; do not edit it)") from err


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
