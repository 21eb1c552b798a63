"""`load_backend`: a model spec -> a loaded backend, by the registry, from a local checkpoint."""

from __future__ import annotations

from disco_ray.backends.base import Backend, ModelSpec, backend_factory, check_spec
from disco_ray.backends.staging import local_checkpoint


def load_backend(spec: ModelSpec) -> Backend:
    """Load the model described by `spec` with its backend (imports the backend lazily; a
    `path` on object storage is staged to local disk for the load: `staging`)."""
    check_spec(spec)
    with local_checkpoint(spec) as local:   # a URI path is loaded from a local copy
        return backend_factory(spec.backend)(local)
