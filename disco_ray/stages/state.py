"""The state a pipeline run shares between its stages."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from disco_ray.config import RunConfig
from disco_ray.distributed.actors import Loader
from disco_ray.distributed.cache import OutputCache
from disco_ray.io.run import RunDirectory

log = logging.getLogger("disco_ray.pipeline")


class PipelineError(RuntimeError):
    """The run cannot go on (e.g. every reference model failed)."""


@dataclass
class RunState:
    """Per-run state shared by the stages."""

    config: RunConfig
    output_dir: Path
    loader: Loader | None
    quiet: bool
    address: str | None
    exits: contextlib.ExitStack
    timings: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)
    ray_started: bool = False

    def cache(self, group: str) -> OutputCache:
        """The output parts of `references` or `targets`."""
        return OutputCache(RunDirectory(self.output_dir).outputs(group))

    @property
    def wait_for_autoscaler(self) -> bool:
        """On a cluster (not a Ray started here), pending models wait for new nodes."""
        return self.address not in (None, "local")

    def ensure_ray(self) -> None:
        """Join or start Ray on first use (a fully cached run may never need it)."""
        from disco_ray.distributed.session import ray_session

        if not self.ray_started:
            with self.stage("start_ray"):
                self.exits.enter_context(
                    ray_session(self.address, self.config.ray.num_cpus, self.quiet))
            self.ray_started = True

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage into `timings` (stages may nest: start_ray inside evaluate_full)."""
        log.info("stage %s", name)
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 3)
