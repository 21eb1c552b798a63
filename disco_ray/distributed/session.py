"""The Ray session a pipeline run uses: an existing one, a cluster address, or a local Ray."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

log = logging.getLogger(__name__)


def address_from_env() -> str | None:
    """$RAY_ADDRESS, unless it is an http(s) URL: that is the job API's address (the dashboard,
    which `ray job submit` reads), not one a driver can join. Inside a job, Ray sets it to the
    cluster's own address."""
    address = os.environ.get("RAY_ADDRESS") or None
    if address and address.startswith(("http://", "https://")):
        log.info("RAY_ADDRESS=%s is a job-submission address, not a cluster to join: ignored",
                 address)
        return None
    return address


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None, quiet: bool) -> Iterator[None]:
    """Use the current Ray session if there is one; else connect to `address` or start a local
    Ray in-process (`address` None or "local"), and shut it down afterwards."""
    import ray
    from ray.data import DataContext

    data_log = logging.getLogger("ray.data")
    level = data_log.level
    if quiet:   # Ray Data logs its plans at INFO and that bars are off at WARNING
        DataContext.get_current().enable_progress_bars = False
        data_log.setLevel(logging.ERROR)
    started = not ray.is_initialized()
    if started:
        kwargs = {"address": address or "local", "log_to_driver": not quiet,
                  "logging_level": logging.WARNING if quiet else logging.INFO}
        if kwargs["address"] == "local":
            kwargs.update(num_cpus=num_cpus, include_dashboard=False)
        ray.init(**kwargs)
    try:
        yield
    finally:
        data_log.setLevel(level)
        if started:
            ray.shutdown()
