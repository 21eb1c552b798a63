"""The digits demo zoo: task shape, train/test separation, determinism, accuracy spread."""

import numpy as np
import pytest

from disco_ray.backends.base import ModelSpec
from disco_ray.backends.loading import load_backend
from disco_ray.zoo import digits


@pytest.fixture(scope="module")
def split():
    return digits.data_split()


def accuracy(options: dict, split) -> float:
    probs = digits.build_model(**options).predict_proba(split.X_test)
    return float(np.mean(probs.argmax(axis=1) == split.y_test))


def test_task_is_the_test_split(split):
    task = digits.task()
    assert 1100 <= len(task.samples) <= 1250
    assert task.sample_ids == [f"digits/{i}" for i in split.test_index]
    sample = task.samples[0]
    assert sample.choices == tuple("0123456789") and sample.context == "" and sample.group is None
    assert sample.inputs.shape == (64,) and 0 <= sample.inputs.min() <= sample.inputs.max() <= 1
    assert [s.gold for s in task.samples] == split.y_test.tolist()


def test_training_never_touches_the_test_split(split):
    train_index = np.setdiff1d(np.arange(1797), split.test_index)
    assert len(train_index) + len(split.test_index) == 1797
    assert len(split.X_train) == len(train_index)
    X, y = digits.training_data(seed=3, train_fraction=0.3, label_noise=0.2)
    train_rows = {row.tobytes() for row in split.X_train}
    assert all(row.tobytes() in train_rows for row in X)
    assert set(y.tolist()) == set(range(10)) and len(y) < 0.35 * len(split.X_train)


@pytest.mark.parametrize("options", [
    {"family": "mlp", "hidden": 16, "epochs": 3, "seed": 2, "train_fraction": 0.5},
    {"family": "rf", "n_estimators": 10, "max_depth": 5, "seed": 1, "label_noise": 0.2},
])
def test_same_options_give_identical_predictions(split, options):
    first = digits.build_model(**options).predict_proba(split.X_test)
    second = digits.build_model(**options).predict_proba(split.X_test)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (len(split.X_test), 10) and first.min() > 0
    np.testing.assert_allclose(first.sum(axis=1), 1.0)


def test_accuracies_spread_and_checkpoints_improve(split):
    weak = accuracy({"family": "tree", "max_depth": 2, "seed": 1}, split)
    strong = accuracy({"family": "knn", "k": 1, "train_fraction": 0.5}, split)
    early, late = (accuracy({"family": "mlp", "hidden": 32, "seed": 2, "epochs": e}, split)
                   for e in (2, 16))
    assert weak < 0.5 and strong > 0.93
    assert early + 0.3 < late


def test_populations_are_valid_unique_model_entries():
    references, targets = digits.references(), digits.targets()
    assert 40 <= len(references) <= 60 and 8 <= len(targets) <= 12
    names = [e["name"] for e in references + targets]
    assert len(set(names)) == len(names)
    specs = [ModelSpec(**e) for e in references + targets]
    assert {s.backend for s in specs} == {"classifier"}
    assert {s.options["family"] for s in specs} == set(digits.FAMILIES)
    assert all(e["options"]["test_size"] == 0.6 for e in digits.targets(test_size=0.6))


def test_classifier_backend_scores_the_task():
    entry = digits.targets()[0]
    backend = load_backend(ModelSpec(**entry))
    samples = digits.task().samples[:5]
    scores = backend.loglikelihoods(samples)
    assert len(scores) == 5 and all(s.shape == (10,) and np.all(s <= 0) for s in scores)


def test_unknown_family_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown family 'cnn'"):
        digits.build_model(family="cnn")
