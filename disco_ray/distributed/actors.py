"""One Ray actor per model: load its backend once, then score batches of the task's samples.

The actor process lives for one model only (when the model is done, the scheduler has it close
its backend, then kills the process): GPU memory is reliably freed only when the process exits.
Batches of samples come as arguments of each call (from the object store, shared by all
actors), so a restarted actor needs nothing but its spec.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from disco_ray.backends.base import Backend, ModelSpec
from disco_ray.backends.loading import load_backend
from disco_ray.tasks.base import MCSample

if TYPE_CHECKING:  # the actor's module stays light: workers import it
    from disco_ray.config import ResourcesConfig

Loader = Callable[[ModelSpec], Backend]
GPU_BACKENDS = ("vllm", "hf")


class ModelActor:
    """Hosts one model. Wrapped with `ray.remote` by the scheduler.

    Args:
        spec: the model to load.
        loader: how to load the backend (default: the registry's `load_backend`).
    """

    def __init__(self, spec: ModelSpec, loader: Loader | None = None) -> None:
        start = time.perf_counter()
        self.backend = (loader or load_backend)(spec)
        self.load_s = time.perf_counter() - start

    def placement(self) -> dict[str, Any]:
        """Where this actor runs, how long its model took to load, and whether Ray restarted
        it (`reconstructed`: an earlier process of this actor died)."""
        import ray

        context = ray.get_runtime_context()
        return {"node_id": context.get_node_id(), "actor_id": context.get_actor_id(),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "pid": os.getpid(),
                "process": process_id(), "load_s": self.load_s,
                "reconstructed": context.was_current_actor_reconstructed}

    def score(self, samples: Sequence[MCSample]) -> tuple[list[np.ndarray], float, str]:
        """Per-choice log-likelihoods of `samples`, the seconds it took, and this process
        (`process_id`: a restarted actor answers from another one)."""
        began = time.perf_counter()
        values = self.backend.loglikelihoods(samples)
        return ([np.asarray(v, dtype=np.float64) for v in values], time.perf_counter() - began,
                process_id())

    def close(self) -> None:
        """Close the backend: vLLM's engine shuts down and removes its temporary files."""
        self.backend.close()


def process_id() -> str:
    """`<node id>/<pid>` of the calling Ray worker process."""
    import ray

    return f"{ray.get_runtime_context().get_node_id()}/{os.getpid()}"


def gpus_per_model(spec: ModelSpec, requested: float | str, cluster_has_gpus: bool) -> float:
    """GPUs for one model's actor.

    `auto`: a model on `device: cpu` gets none; otherwise vLLM always gets
    `tensor_parallel_size`, a model on `device: cuda*` too; hf on `device: auto` gets them when
    the cluster has GPUs; everything else runs on CPUs.
    """
    if requested != "auto":
        return float(requested)
    if spec.device == "cpu":
        return 0.0
    if spec.backend == "vllm" or spec.device.startswith("cuda"):
        return float(spec.tensor_parallel_size)
    if spec.device == "auto" and spec.backend in GPU_BACKENDS and cluster_has_gpus:
        return float(spec.tensor_parallel_size)
    return 0.0


def actor_options(spec: ModelSpec, resources: "ResourcesConfig",
                  cluster_has_gpus: bool) -> dict[str, Any]:
    """`ray.remote` options of a model's actor: resources and crash retries.

    `max_retries` bounds the actor's restarts. Calls lost with its process are retried for as
    long as it may restart (`max_task_retries` -1): a node lost mid-run makes every queued call
    fail until Ray notices, which would use up a bounded count before the actor is restarted.
    An exception raised by the backend itself is never retried."""
    return {"num_cpus": resources.cpus_per_model,
            "num_gpus": gpus_per_model(spec, resources.gpus_per_model, cluster_has_gpus),
            "max_restarts": resources.max_retries,
            "max_task_retries": -1 if resources.max_retries else 0}
