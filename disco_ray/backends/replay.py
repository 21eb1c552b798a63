"""Replay outputs already on disk: a model's stored choice probabilities, served as a backend.

`spec.path` is anything `disco_ray.io.read_outputs` reads (shared `.npz`, the project's Parquet,
lm-eval `samples_*.jsonl`); the model is `options["model_id"]` (default: the file's only model,
or `spec.name` when it holds several). Options `task` and `metric` go to the lm-eval reader.

The stored probabilities are final: `log(probs)` is returned, so score the task with metric
`acc` (lm-eval's acc_norm normalisation, if any, is already inside the probabilities).
Outputs with 0/1 correctness only cannot be replayed: a backend must give per-choice values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from disco_ray.backends.base import ModelSpec, register_backend
from disco_ray.tasks.base import MCSample

READER_OPTIONS = ("task", "metric")
MIN_PROB = 1e-12


class ReplayError(ValueError):
    """Stored outputs that cannot answer the requested samples."""


class ReplayBackend:
    """One model's stored probabilities, looked up by sample id."""

    def __init__(self, spec: ModelSpec) -> None:
        from disco_ray.io import read_outputs

        outputs = read_outputs(spec.path, **{k: v for k, v in spec.options.items()
                                             if k in READER_OPTIONS})
        self.model_id = _stored_model(outputs.model_ids, spec)
        where = f"{outputs.source}: model '{self.model_id}'"
        rows = np.flatnonzero(outputs.model_ids == self.model_id)
        if len(rows) == 0:
            known = ", ".join(outputs.model_ids[:5].tolist())
            raise ReplayError(f"{where} is not in the file (models: {known}"
                              f"{', ...' if outputs.n_models > 5 else ''}). Fix: set "
                              "options.model_id to one of the stored model ids")
        if outputs.probs is None:
            raise ReplayError(f"{where}: the file holds 0/1 correctness only, but replay needs "
                              "per-choice probabilities. Fix: export probabilities (probs) or "
                              "re-run the model with the hf or vllm backend")
        self.source = where
        self._probs = outputs.probs[rows[0]]
        self._missing = np.isnan(outputs.correct[rows[0]])
        self._index = {sid: i for i, sid in enumerate(outputs.sample_ids.tolist())}

    def loglikelihoods(self, samples: Sequence[MCSample]) -> list[np.ndarray]:
        """Per sample, the log of the stored probability of each choice (float64)."""
        missing = [s.sample_id for s in samples
                   if s.sample_id not in self._index or self._missing[self._index[s.sample_id]]]
        if missing:
            raise ReplayError(f"{self.source}: no stored output for {len(missing)} requested "
                              f"sample(s), e.g. {missing[:5]}. Fix: replay outputs that cover "
                              "every requested sample, or run the model with the hf or vllm "
                              "backend")
        return [self._log_probs(s) for s in samples]

    def _log_probs(self, sample: MCSample) -> np.ndarray:
        probs = self._probs[self._index[sample.sample_id]].astype(np.float64)
        extra = probs[sample.n_options:]
        if len(probs) < sample.n_options or extra.sum() > 1e-3:
            raise ReplayError(f"{self.source}: sample '{sample.sample_id}' has "
                              f"{sample.n_options} choices but the stored probabilities cover "
                              f"{len(probs)}, with mass {extra.sum():.3g} beyond the first "
                              f"{sample.n_options}. Fix: replay outputs of the same task")
        return np.log(np.clip(probs[:sample.n_options], MIN_PROB, 1.0))

    def close(self) -> None:
        """Drop the stored probabilities."""
        self._probs = None


def _stored_model(model_ids: np.ndarray, spec: ModelSpec) -> str:
    """The model to replay: `options.model_id`, else the file's only model, else `spec.name`."""
    if "model_id" in spec.options:
        return str(spec.options["model_id"])
    return str(model_ids[0]) if len(model_ids) == 1 else spec.name


@register_backend("replay", ("model_id", *READER_OPTIONS))
def load_replay_backend(spec: ModelSpec) -> ReplayBackend:
    """Registry factory for `backend: replay`."""
    return ReplayBackend(spec)
