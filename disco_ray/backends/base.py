"""The one backend interface: a model spec plus samples in, per-choice log-likelihoods out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from disco_ray.tasks.base import MCSample


@dataclass(frozen=True)
class ModelSpec:
    """What to load and how: the unit a Ray actor hosts.

    Attributes:
        name: unique model id used in outputs and caches.
        backend: registry name (`hf`, `vllm`, `classifier`, `replay`).
        path: local path, Hugging Face id, or a URI on object storage (`s3://`, `gs://`:
            copied to the node's disk to load, `backends.staging`).
        tensor_parallel_size: GPUs per model (vllm); 1 elsewhere.
        device: `cpu`, `cuda` or `auto`.
        trust_remote_code: off unless the user turns it on.
        options: backend-specific settings (batch size, dtype, max_model_len, ...).
    """

    name: str
    backend: str
    path: str
    tensor_parallel_size: int = 1
    device: str = "auto"
    trust_remote_code: bool = False
    options: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """A loaded model that scores multiple-choice samples."""

    def loglikelihoods(self, samples: Sequence[MCSample]) -> list[np.ndarray]:
        """Per sample, the summed log-likelihood of each choice given the context."""
        ...

    def close(self) -> None:
        """Release the model's memory."""
        ...


_REGISTRY: dict[str, Callable[[ModelSpec], Backend]] = {}
_OPTIONS: dict[str, tuple[str, ...] | None] = {}
BUILTIN_BACKENDS = ("hf", "vllm", "classifier", "replay")   # modules of this package
# options of every backend: where a checkpoint on object storage is staged (`staging`)
STAGING_OPTIONS = ("stage", "stage_dir")


def known_backends() -> list[str]:
    """The backend names `load_backend` can load: the built-in ones and any registered."""
    return sorted(set(_REGISTRY) | set(BUILTIN_BACKENDS))


def register_backend(name: str, options: Sequence[str] | None = None) -> Callable:
    """Decorator: make a backend factory loadable by name; `options`: the `ModelSpec.options`
    keys it reads (None: any, e.g. a classifier's hyperparameters)."""
    def wrap(factory: Callable[[ModelSpec], Backend]) -> Callable[[ModelSpec], Backend]:
        _REGISTRY[name] = factory
        _OPTIONS[name] = None if options is None else (*options, *STAGING_OPTIONS)
        return factory
    return wrap


def check_spec(spec: ModelSpec) -> None:
    """Refuse an unknown backend or an option the backend does not read (a typo would
    otherwise be ignored), naming the model, the field and the fix."""
    import difflib
    import importlib

    if spec.backend not in _REGISTRY:
        try:
            importlib.import_module(f"disco_ray.backends.{spec.backend}")
        except ModuleNotFoundError as err:
            if err.name != f"disco_ray.backends.{spec.backend}":
                raise
    if spec.backend not in _REGISTRY:
        raise ValueError(f"model '{spec.name}': field 'backend': unknown backend "
                         f"'{spec.backend}'. Fix: use one of {', '.join(known_backends())}")
    allowed = _OPTIONS[spec.backend]
    for key in [] if allowed is None else [k for k in spec.options if k not in allowed]:
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"model '{spec.name}': field 'options': backend '{spec.backend}' has "
                         f"no option '{key}'{hint}. Fix: use one of {', '.join(allowed)}")


def backend_factory(name: str) -> Callable[[ModelSpec], Backend]:
    """The registered factory of backend `name` (`check_spec` first: it imports the backend)."""
    return _REGISTRY[name]
