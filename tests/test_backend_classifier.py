"""The `classifier` backend with factories defined here: scikit-learn and torch."""

from __future__ import annotations

import numpy as np
import pytest

from disco_ray.backends.base import ModelSpec
from disco_ray.backends.loading import load_backend
from disco_ray.tasks.base import MCSample

N_FEATURES, N_CLASSES = 4, 3


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, N_FEATURES)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)


def make_logreg(C: float = 1.0):
    """A fitted 3-class logistic regression (the factory the backend imports)."""
    from sklearn.linear_model import LogisticRegression
    x, y = _data()
    return LogisticRegression(C=C).fit(x, y)


def make_certain():
    """A classifier whose probabilities contain exact zeros."""
    class Certain:
        def predict_proba(self, x):
            return np.tile([1.0, 0.0, 0.0], (len(x), 1))
    return Certain()


def make_linear(seed: int = 0):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(N_FEATURES, 8), torch.nn.Tanh(),
                               torch.nn.Linear(8, N_CLASSES))


def _samples(n: int = 7, n_choices: int = N_CLASSES) -> list[MCSample]:
    x, y = _data(seed=1)
    return [MCSample(f"s{i}", "", tuple(f"class {c}" for c in range(n_choices)),
                     int(y[i]) % n_choices, inputs=x[i]) for i in range(n)]


def _spec(path: str, **options) -> ModelSpec:
    return ModelSpec("clf", "classifier", path, device="cpu", options=options)


@pytest.mark.parametrize("batch_size", [1, 3, 256])
def test_sklearn_factory_gives_log_predict_proba(batch_size):
    samples = _samples()
    got = load_backend(_spec(f"{__name__}:make_logreg", C=0.5,
                             batch_size=batch_size)).loglikelihoods(samples)
    want = np.log(make_logreg(C=0.5).predict_proba(np.stack([s.inputs for s in samples])))
    assert all(g.dtype == np.float64 and g.shape == (N_CLASSES,) for g in got)
    np.testing.assert_allclose(np.stack(got), want, rtol=1e-6)


def test_zero_probabilities_are_clipped():
    got = load_backend(_spec(f"{__name__}:make_certain")).loglikelihoods(_samples(2))
    np.testing.assert_allclose(got[0], [0.0, np.log(1e-12), np.log(1e-12)])


def test_torch_factory_gives_log_softmax():
    torch = pytest.importorskip("torch")
    samples = _samples()
    got = load_backend(_spec(f"{__name__}:make_linear", seed=4,
                             batch_size=2)).loglikelihoods(samples)
    with torch.no_grad():
        logits = make_linear(seed=4)(torch.from_numpy(np.stack([s.inputs for s in samples])))
    np.testing.assert_allclose(np.stack(got), torch.log_softmax(logits, -1).numpy(), atol=1e-6)


def test_state_dict_is_loaded_into_the_factory_module(tmp_path):
    torch = pytest.importorskip("torch")
    trained = make_linear(seed=9)
    path = tmp_path / "weights.pt"
    torch.save(trained.state_dict(), path)
    samples = _samples()
    got = load_backend(_spec(str(path), factory=f"{__name__}:make_linear",
                             seed=1)).loglikelihoods(samples)
    with torch.no_grad():
        logits = trained(torch.from_numpy(np.stack([s.inputs for s in samples])))
    np.testing.assert_allclose(np.stack(got), torch.log_softmax(logits, -1).numpy(), atol=1e-6)


def test_state_dict_without_factory_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="options.factory"):
        load_backend(_spec(str(tmp_path / "weights.pt")))


def test_pickles_are_refused(tmp_path):
    with pytest.raises(ValueError, match="never loads"):
        load_backend(_spec(str(tmp_path / "model.pkl")))


@pytest.mark.parametrize("path, error, match", [
    ("no_colon_here", ValueError, "package.module:callable"),
    ("disco_ray_no_such_module:make", ImportError, "cannot import module"),
    (f"{__name__}:no_such_factory", AttributeError, "no attribute"),
    (f"{__name__}:N_CLASSES", TypeError, "not callable"),
])
def test_bad_factory_paths_are_clear_errors(path, error, match):
    with pytest.raises(error, match=match):
        load_backend(_spec(path))


def test_class_count_must_match_choices():
    backend = load_backend(_spec(f"{__name__}:make_logreg"))
    with pytest.raises(ValueError, match="gives 3 classes but sample 's0' has 2 choices"):
        backend.loglikelihoods(_samples(n_choices=2))


def test_samples_need_inputs():
    backend = load_backend(_spec(f"{__name__}:make_logreg"))
    with pytest.raises(ValueError, match="has no inputs"):
        backend.loglikelihoods([MCSample("q", "text", ("a", "b", "c"), 0)])
