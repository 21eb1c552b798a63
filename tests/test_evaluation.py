"""The evaluation protocol's splits."""

from disco_ray.evaluation import model_splits
from helpers import synthetic_population


def test_leave_one_out_draws_anchors_with_several_seeds():
    """With fewer than 100 models each model is held out once, and the anchor seeds rotate."""
    splits = list(model_splits(synthetic_population(12, 20, seed=0), "random", seeds=5))
    assert [s.held_out.tolist() for s in splits] == [[i] for i in range(12)]
    assert [s.seed for s in splits] == [i % 5 for i in range(12)]
    assert all(i not in s.references for i, s in enumerate(splits))
