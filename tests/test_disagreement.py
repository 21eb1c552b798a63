"""PDS and JSD against hand-computed values; streaming merges equal the in-memory pass."""

import numpy as np
import pytest

from disco_ray.disagreement import (DisagreementState, disagreement_scores, entropy,
                                    guiding_models)
from helpers import synthetic_population

# Two models, two samples, three choices.
P = np.array([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]],
              [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]])


def test_pds_by_hand():
    # sample 0: max over models per choice = (1, 1, 0) -> 2; sample 1: (0.5, 0.5, 0) -> 1
    np.testing.assert_allclose(DisagreementState.of(P).scores("pds"), [2.0, 1.0])


def test_jsd_by_hand():
    # sample 0: H(0.5, 0.5, 0) - mean(H(1,0,0), H(0,1,0)) = ln 2; sample 1: ln2 - ln2 = 0
    np.testing.assert_allclose(DisagreementState.of(P).scores("jsd"), [np.log(2), 0.0],
                               atol=1e-12)


def test_binary_outcomes_give_binary_entropy_of_fraction_right():
    correct = np.array([[1, 0], [1, 1], [0, 1], [1, 1]], dtype=float)  # sample 0: 3/4 right
    dists = np.stack([1 - correct, correct], axis=2)
    expected = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    np.testing.assert_allclose(DisagreementState.of(dists).scores("jsd")[0], expected)


def test_entropy_treats_zero_probability_as_zero_contribution():
    assert entropy(np.array([1.0, 0.0])) == 0.0


@pytest.mark.parametrize("kind", ["pds", "jsd"])
def test_streaming_and_merged_blocks_equal_in_memory(kind):
    probs = synthetic_population(37, 50).probs
    full = DisagreementState.of(probs)
    stream = DisagreementState.empty(50, 4)
    for m in range(37):
        stream = stream.add(probs[m])
    left = DisagreementState.of(probs[:10]).merge(DisagreementState.of(probs[10:25]))
    tree = left.merge(DisagreementState.of(probs[25:]))
    for state in (stream, tree, DisagreementState.from_arrays(full.to_arrays())):
        assert state.n_models == 37
        np.testing.assert_allclose(state.scores(kind), full.scores(kind), rtol=1e-12)
    np.testing.assert_allclose(disagreement_scores(probs, kind, block_size=7), full.scores(kind))


def test_guiding_subset_is_seeded_and_used():
    probs = synthetic_population(30, 40).probs
    chosen = guiding_models(30, 10, seed=3)
    assert len(chosen) == 10 and np.array_equal(chosen, guiding_models(30, 10, seed=3))
    np.testing.assert_allclose(disagreement_scores(probs, "jsd", guiding=10, seed=3),
                               DisagreementState.of(probs[chosen]).scores("jsd"))


def test_merging_states_of_different_samples_fails():
    with pytest.raises(ValueError, match="different samples"):
        DisagreementState.of(P).merge(DisagreementState.empty(3, 3))
