"""Reader of the shared `.npz` outcome format (see shared/data/real/README.md)."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from disco_ray.io.json_object import json_object
from disco_ray.outputs import ModelOutputs, OutputsError

REQUIRED = ("model_ids", "sample_ids", "correct")
MAX_CHOICES = 1024   # a choice index beyond this is a corrupt value, not a real option
log = logging.getLogger(__name__)


def read_npz(path: str | Path) -> ModelOutputs:
    """Read an outcome `.npz` (never unpickling): correctness, optional probs/choices/groups."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise OutputsError(f"{path}: the file is empty. Fix: re-export the outputs (numpy.savez)")
    if not zipfile.is_zipfile(path):
        raise OutputsError(f"{path}: not an .npz archive (an .npz is a zip of arrays). Fix: save "
                           "the arrays with numpy.savez, or give a Parquet file a .parquet name")
    try:
        data = np.load(path, allow_pickle=False)
        arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError) as err:
        raise OutputsError(f"{path}: not a readable .npz without pickled objects ({err}). "
                           "Fix: save plain arrays with numpy.savez") from err
    missing = [key for key in REQUIRED if key not in arrays]
    if missing:
        raise OutputsError(f"{path}: field '{missing[0]}' is missing (has {sorted(arrays)}). "
                           f"Fix: store {', '.join(REQUIRED)} (and optionally full_score, groups, "
                           "gold, pred_choice, probs)")
    meta = json_object(str(arrays["meta"]), f"{path}: field 'meta'", "store json.dumps({...}) "
                       "of a dict, or leave it out") if "meta" in arrays else {}
    probs = arrays.get("probs")
    if probs is not None:
        probs = _missing_rows_as_uniform(np.asarray(probs, dtype=np.float32), path)
    if probs is None and "pred_choice" in arrays and "gold" in arrays:
        probs = _choices_as_probs(path, arrays["pred_choice"], arrays["gold"])
    return ModelOutputs(
        model_ids=arrays["model_ids"], sample_ids=arrays["sample_ids"], correct=arrays["correct"],
        probs=probs, gold=arrays.get("gold"), groups=arrays.get("groups"),
        full_score=arrays.get("full_score"), source=str(path), meta=meta)


def _choices_as_probs(path: Path, pred_choice: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """One-hot distributions of the chosen answers; an unparsed answer (-1) is uniform. The
    choice count is the largest index in `gold` or `pred_choice`, plus one."""
    pred_choice, gold = (_indices(path, name, value) for name, value in
                         (("pred_choice", pred_choice), ("gold", gold)))
    for name, value in (("gold", gold), ("pred_choice", pred_choice)):
        if value.max() >= MAX_CHOICES:
            raise OutputsError(f"{path}: field '{name}' holds choice index {int(value.max())}; "
                               f"at most {MAX_CHOICES - 1} is read (an index is a position "
                               "among a sample's choices). Fix: store 0-based choice indices "
                               "(-1: unparsed), or per-choice probabilities in 'probs'")
    n_choices = max(int(gold.max()), int(pred_choice.max())) + 1
    probs = np.full(pred_choice.shape + (n_choices,), 1.0 / n_choices, dtype=np.float32)
    parsed = pred_choice >= 0
    probs[parsed] = np.eye(n_choices, dtype=np.float32)[pred_choice[parsed]]
    return probs


def _indices(path: Path, name: str, value: np.ndarray) -> np.ndarray:
    """Choice indices as int64 (integer-valued floats are accepted)."""
    if (value.size == 0 or not np.issubdtype(value.dtype, np.number)
            or not np.array_equal(value, np.round(value))):
        raise OutputsError(f"{path}: field '{name}' holds {value.size} value(s) of type "
                           f"{value.dtype}, not all whole numbers. Fix: store choice indices, one "
                           "per sample in gold, one per (model, sample) in pred_choice (-1: "
                           "unparsed)")
    return value.astype(np.int64)


def _missing_rows_as_uniform(probs: np.ndarray, path: Path) -> np.ndarray:
    """Probabilities with each all-NaN row (a model not run on a sample) made uniform over the
    sample's choices, as an unparsed answer is; partly-NaN rows are left for the check to refuse.
    A sample's choices are those any model gives a positive probability (padding holds 0)."""
    if probs.ndim != 3:
        return probs
    missing = np.isnan(probs).all(axis=2)
    if not missing.any():
        return probs
    observed = np.where(missing[..., None], 0.0, np.nan_to_num(probs, nan=0.0))
    choices = (observed > 0).any(axis=0)                       # [N, C]
    choices[~choices.any(axis=1)] = True
    uniform = choices / choices.sum(axis=1, keepdims=True)
    filled = probs.copy()
    model, sample = np.nonzero(missing)
    filled[model, sample] = uniform[sample]
    log.warning("%s: %d (model, sample) probability rows are all NaN (not run); they are read as "
                "uniform over the sample's choices, and count as missing (wrong) outcomes where "
                "`correct` is NaN", path, len(model))
    return filled
