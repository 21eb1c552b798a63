"""ModelOutputs validation: every bad input names the field and the fix."""

import numpy as np
import pytest

from disco_ray.outputs import ModelOutputs, OutputsError, group_mean
from helpers import synthetic_population


def _probs(m=2, n=3, c=4):
    return np.full((m, n, c), 1.0 / c, dtype=np.float32)


@pytest.mark.parametrize("value, message", [
    (np.nan, "NaN"), (-0.1, "negative"), (0.5, "do not sum to 1")])
def test_bad_probabilities_are_rejected(value, message):
    probs = _probs()
    probs[1, 2, 0] = value
    with pytest.raises(OutputsError, match=message) as err:
        ModelOutputs.from_probs(["a", "b"], ["x", "y", "z"], probs, [0, 0, 0], source="f.npz")
    assert "f.npz" in str(err.value) and "'probs'" in str(err.value) and "Fix:" in str(err.value)
    if message == "NaN":   # a published matrix with gaps can still be used through `correct`
        assert "drop `probs`" in str(err.value)


def test_duplicate_model_ids_are_rejected():
    with pytest.raises(OutputsError, match="'model_ids'.*duplicate.*'a'"):
        ModelOutputs(["a", "a"], ["x"], np.zeros((2, 1)))


def test_empty_outputs_are_rejected():
    with pytest.raises(OutputsError, match="empty"):
        ModelOutputs([], [], np.zeros((0, 0)))


def test_correctness_outside_unit_interval_is_rejected():
    with pytest.raises(OutputsError, match="outside \\[0, 1\\]"):
        ModelOutputs(["a"], ["x", "y"], np.array([[0.0, 2.0]]))


def test_scores_in_percent_are_rejected_with_the_fix():
    """A leaderboard dump in percent would otherwise give predictions 100 times too large."""
    with pytest.raises(OutputsError, match=r"field 'full_score': has values outside \[0, 1\] "
                                           r"\(largest 61.5\).*divided by 100"):
        ModelOutputs(["a", "b"], ["x", "y"], np.array([[0.0, 1.0], [1.0, 1.0]]),
                     full_score=np.array([45.0, 61.5]))


def test_missing_anchor_samples_are_named():
    outputs = synthetic_population(4, 10)
    with pytest.raises(OutputsError, match="2 anchor sample.*nope"):
        outputs.sample_index(["q1", "nope", "nope2"])


def test_scores_are_mean_of_group_means_when_groups_are_known():
    correct = np.array([[1, 1, 1, 0], [0, 0, 0, 1]], dtype=np.float32)
    groups = np.array(["a", "a", "a", "b"])
    outputs = ModelOutputs(["m1", "m2"], list("wxyz"), correct, groups=groups)
    np.testing.assert_allclose(outputs.scores(), [0.5, 0.5])
    np.testing.assert_allclose(group_mean(correct, None), [0.75, 0.25])


def test_missing_outcomes_count_as_wrong():
    outputs = ModelOutputs(["m"], ["x", "y"], np.array([[np.nan, 1.0]]))
    np.testing.assert_allclose(outputs.scores(), [0.5])


def test_take_samples_keeps_full_benchmark_score():
    outputs = synthetic_population(5, 20)
    subset = outputs.take_samples([0, 1])
    np.testing.assert_allclose(subset.scores(), outputs.scores())
    assert subset.probs.shape == (5, 2, 4)
