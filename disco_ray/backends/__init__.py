"""Backends that score multiple-choice samples: hf, vllm, classifier, replay (loaded lazily)."""

from disco_ray.backends.base import Backend, ModelSpec, register_backend
from disco_ray.backends.loading import load_backend

__all__ = ["Backend", "ModelSpec", "load_backend", "register_backend"]
