"""Classifiers (scikit-learn or torch) over `MCSample.inputs`: log-probabilities per class.

`spec.path` is either
  * `package.module:callable`: a factory in the user's code, called with `spec.options` minus
    the backend keys below, returning a fitted object with `predict_proba` or a
    `torch.nn.Module` that maps a batch of inputs to logits; or
  * a `.pt` / `.pth` state dict, loaded with `torch.load(..., weights_only=True)` into the
    module that `spec.options["factory"]` (`package.module:callable`) builds.
Pickled model files are never loaded: wrap them in a factory of your own if you trust them.

Options: factory (for state dicts), batch_size (256); every other option is passed to the
factory. Each sample's class count must equal its number of choices.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Sequence

import numpy as np

from disco_ray.backends.base import STAGING_OPTIONS, ModelSpec, register_backend
from disco_ray.tasks.base import MCSample

BACKEND_KEYS = ("factory", "batch_size", *STAGING_OPTIONS)   # not for the factory
STATE_DICT_SUFFIXES = (".pt", ".pth")
MIN_PROB = 1e-12


def import_callable(target: str, what: str) -> Callable:
    """The callable named by `package.module:attribute` (attribute may be dotted)."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{what}: '{target}' is not of the form 'package.module:callable'. "
                         "Fix: point to a factory function in your code")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(f"{what}: cannot import module '{module_name}' ({err}). Fix: make "
                          "it importable on every worker (install it, or ship it with the "
                          "Ray working_dir)") from err
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise AttributeError(f"{what}: module '{module_name}' has no attribute "
                                 f"'{attribute}'. Fix: check the name after ':'")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{what}: '{target}' is not callable. Fix: point to a factory function")
    return obj


class ClassifierBackend:
    """A fitted classifier that scores each sample's classes."""

    def __init__(self, spec: ModelSpec) -> None:
        self.name = spec.name
        self.batch_size = int(spec.options.get("batch_size", 256))
        self.device = "cpu"
        self.model = self._build(spec)
        if hasattr(self.model, "predict_proba"):
            self._log_probs = self._sklearn_log_probs
        elif _is_torch_module(self.model):
            self.device = _device(spec.device)
            self.model = self.model.to(self.device).eval()
            self._log_probs = self._torch_log_probs
        else:
            raise TypeError(f"model '{spec.name}': the factory returned a "
                            f"{type(self.model).__name__}, which has no predict_proba and is "
                            "not a torch.nn.Module. Fix: return a fitted classifier or a module")

    def _build(self, spec: ModelSpec) -> Any:
        kwargs = {k: v for k, v in spec.options.items() if k not in BACKEND_KEYS}
        what = f"model '{spec.name}'"
        if spec.path.lower().endswith(STATE_DICT_SUFFIXES):
            if "factory" not in spec.options:
                raise ValueError(f"{what}: a state dict needs options.factory "
                                 "('package.module:callable' building the module)")
            module = import_callable(spec.options["factory"], f"{what}: option 'factory'")(
                **kwargs)
            _load_state_dict(module, spec.path, what)
            return module
        if spec.path.lower().endswith((".pkl", ".pickle", ".joblib")):
            raise ValueError(f"{what}: '{spec.path}' is a pickle, which disco_ray never loads "
                             "(unpickling runs code). Fix: save a torch state dict, or give "
                             "'package.module:callable' for a factory of your own")
        return import_callable(spec.path, f"{what}: path")(**kwargs)

    def loglikelihoods(self, samples: Sequence[MCSample]) -> list[np.ndarray]:
        """Per sample, the log-probability of each class (float64)."""
        for sample in samples:
            if sample.inputs is None:
                raise ValueError(f"sample '{sample.sample_id}' has no inputs. Fix: give "
                                 "classifier tasks an 'inputs' array per sample")
        out: list[np.ndarray] = []
        for first in range(0, len(samples), self.batch_size):
            batch = samples[first:first + self.batch_size]
            log_probs = self._log_probs(np.stack([np.asarray(s.inputs, np.float32)
                                                  for s in batch]))
            for sample, row in zip(batch, log_probs):
                if len(row) != sample.n_options:
                    raise ValueError(f"model '{self.name}' gives {len(row)} classes but sample "
                                     f"'{sample.sample_id}' has {sample.n_options} choices. "
                                     "Fix: list one choice per class, in class order")
                out.append(np.asarray(row, dtype=np.float64))
        return out

    def _sklearn_log_probs(self, inputs: np.ndarray) -> np.ndarray:
        probs = np.asarray(self.model.predict_proba(inputs.reshape(len(inputs), -1)))
        return np.log(np.clip(probs, MIN_PROB, 1.0))

    def _torch_log_probs(self, inputs: np.ndarray) -> np.ndarray:
        import torch
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(inputs).to(self.device))
            return torch.log_softmax(logits.double(), dim=-1).cpu().numpy()

    def close(self) -> None:
        """Drop the model."""
        self.model = None


def _is_torch_module(obj: Any) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(obj, torch.nn.Module)


def _load_state_dict(module: Any, path: str, what: str) -> None:
    import torch
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{what}: option 'factory' returned a {type(module).__name__}, not a "
                        "torch.nn.Module. Fix: a state dict needs a factory building the module")
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def _device(requested: str) -> str:
    import torch
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


@register_backend("classifier")
def load_classifier_backend(spec: ModelSpec) -> ClassifierBackend:
    """Registry factory for `backend: classifier`."""
    return ClassifierBackend(spec)
