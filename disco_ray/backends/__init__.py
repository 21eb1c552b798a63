"""Backends that score multiple-choice samples: hf, vllm, classifier, replay (loaded lazily)."""

from disco_ray.backends.base import Backend, ModelSpec, load_backend, register_backend

__all__ = ["Backend", "ModelSpec", "load_backend", "register_backend"]
