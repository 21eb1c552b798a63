"""The `replay` backend: stored probabilities served back as log-likelihoods."""

from __future__ import annotations

import numpy as np
import pytest

from disco_ray.backends.base import ModelSpec
from disco_ray.backends.loading import load_backend
from disco_ray.backends.replay import ReplayError
from disco_ray.io import write_outputs
from disco_ray.outputs import ModelOutputs
from disco_ray.tasks.base import MCSample

PROBS = np.array([[[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]],
                  [[0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.9, 0.1, 0.0]]], dtype=np.float32)
SAMPLES = [MCSample("q0", "ctx", (" a", " b", " c"), 0),
           MCSample("q1", "ctx", (" a", " b", " c"), 1),
           MCSample("q2", "ctx", (" yes", " no"), 0)]


@pytest.fixture()
def stored(tmp_path):
    outputs = ModelOutputs.from_probs(["alpha", "beta"], ["q0", "q1", "q2"], PROBS,
                                      gold=np.array([0, 1, 0]))
    return write_outputs(outputs, tmp_path / "outputs.parquet")


def _backend(path, name="alpha", **options):
    return load_backend(ModelSpec(name, "replay", str(path), options=options))


def test_replays_log_probabilities_in_requested_order(stored):
    got = _backend(stored, name="run-1", model_id="beta").loglikelihoods(SAMPLES[::-1])
    assert [g.dtype for g in got] == [np.float64] * 3
    np.testing.assert_allclose(got[0], np.log([0.9, 0.1]), rtol=1e-6)
    np.testing.assert_allclose(got[2], np.log(PROBS[1, 0]), rtol=1e-6)


def test_zero_probabilities_are_clipped(stored):
    got = _backend(stored).loglikelihoods([SAMPLES[1]])[0]
    np.testing.assert_allclose(got, [np.log(1e-12), 0.0, np.log(1e-12)], atol=1e-6)


def test_missing_sample_is_a_clear_error(stored):
    with pytest.raises(ReplayError, match=r"no stored output for 1 requested sample.*'q9'"):
        _backend(stored).loglikelihoods([SAMPLES[0], MCSample("q9", "c", (" a", " b"), 0)])


def test_missing_model_is_a_clear_error(stored):
    with pytest.raises(ReplayError, match="model 'gamma' is not in the file.*alpha, beta"):
        _backend(stored, name="gamma")


def test_a_file_of_one_model_replays_it_whatever_the_name(tmp_path):
    """A glob of per-model files names each model after its file ('beta.parquet')."""
    one = ModelOutputs.from_probs(["beta"], ["q0", "q1", "q2"], PROBS[1:], gold=np.array([0, 1, 0]))
    path = write_outputs(one, tmp_path / "beta.parquet")
    got = _backend(path, name="beta.parquet").loglikelihoods([SAMPLES[0]])
    np.testing.assert_allclose(got[0], np.log(PROBS[1, 0]), rtol=1e-6)
    with pytest.raises(ReplayError, match="model 'alpha' is not in the file"):
        _backend(path, name="x", model_id="alpha")   # an explicit id is still checked


def test_choice_count_mismatch_is_a_clear_error(stored):
    wrong = MCSample("q0", "ctx", (" a", " b"), 0)
    with pytest.raises(ReplayError, match="has 2 choices"):
        _backend(stored).loglikelihoods([wrong])


def test_correctness_only_outputs_are_refused(tmp_path):
    outputs = ModelOutputs(["alpha"], ["q0", "q1"], np.array([[1.0, 0.0]]))
    path = write_outputs(outputs, tmp_path / "correct_only.parquet")
    with pytest.raises(ReplayError, match="0/1 correctness only"):
        _backend(path)


def test_missing_outcome_is_a_missing_sample(tmp_path):
    outputs = ModelOutputs(["alpha"], ["q0", "q1"], np.array([[1.0, np.nan]]),
                           probs=np.array([[[1.0, 0.0], [0.5, 0.5]]]))
    path = write_outputs(outputs, tmp_path / "nan.parquet")
    with pytest.raises(ReplayError, match="'q1'"):
        _backend(path).loglikelihoods([MCSample("q1", "c", (" a", " b"), 0)])
