"""Shared fixtures. `ray_session`: ONE local Ray per test session (it takes seconds to start)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 2 CPUs and 4 fake GPUs (for placement tests); shut down at the end."""
    ray = pytest.importorskip("ray")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(address="local", num_cpus=2, num_gpus=4, include_dashboard=False,
             object_store_memory=200 * 1024**2, log_to_driver=False)
    yield ray
    ray.shutdown()
