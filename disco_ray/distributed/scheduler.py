"""Run many models over one list of samples on a Ray cluster, one actor per model.

Every model's actor is created at once: as many run as the cluster holds and the rest stay
pending (so an autoscaler sees the demand and adds nodes). The sample batches are put in the
object store once and all of them are queued on every actor at once; as soon as an actor's last
batch returns, it closes its backend while the results are stored, and is killed (after
`CLOSE_TIMEOUT_S` at most). A crashed actor restarts and its batches are retried (`max_retries`);
a model that still fails is reported with its error while the others finish. Each batch's answer
names the process that computed it, so a restart (the actor's process killed, or its node lost)
shows in the model's `ModelRun.restarts` and `ModelRun.nodes`.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from disco_ray.backends.base import ModelSpec
from disco_ray.config import ResourcesConfig
from disco_ray.distributed.actors import Loader, ModelActor, actor_options
from disco_ray.tasks.base import MCSample

log = logging.getLogger(__name__)

OnDone = Callable[[ModelSpec, list[np.ndarray]], None]
WAIT_LOG_S = 30.0
GET_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 30.0
PLACEMENT = -1  # batch index of an actor's placement call


@dataclass
class ModelRun:
    """What happened to one model: where it ran, how long it took, or why it failed."""

    name: str
    node_id: str = ""
    actor_id: str = ""
    gpu_ids: list[str] = field(default_factory=list)
    load_s: float | None = None
    score_s: float = 0.0
    wall_s: float = 0.0
    error: str | None = None
    restarts: int = 0
    nodes: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)


@dataclass
class _Job:
    spec: ModelSpec
    actor: Any
    run: ModelRun
    results: list[list[np.ndarray] | None]
    started: float

    @property
    def complete(self) -> bool:
        return all(r is not None for r in self.results)


def evaluate_models(specs: Sequence[ModelSpec], samples: Sequence[MCSample],
                    resources: ResourcesConfig, on_done: OnDone, *, loader: Loader | None = None,
                    wait_for_autoscaler: bool = False, progress: bool = True,
                    desc: str = "models") -> list[ModelRun]:
    """Score `samples` with every model; `on_done(spec, loglikelihoods)` as each one finishes.

    A model that needs more resources than any node has fails at once, unless
    `wait_for_autoscaler` (then it stays pending until a big enough node joins).
    An exception raised by `on_done` fails that model, except an `OSError` (e.g. a full disk):
    that stops the run, as Ctrl-C does, and every actor is killed first. Returns one `ModelRun`
    per spec.
    """
    import ray
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    batches = [ray.put(tuple(samples[a:a + resources.batch_size]))
               for a in range(0, len(samples), resources.batch_size)]
    nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
    jobs: dict[str, _Job] = {}
    pending: dict[Any, tuple[str, int]] = {}
    runs = [ModelRun(spec.name) for spec in specs]
    with logging_redirect_tqdm(), tqdm(total=len(specs), desc=desc, unit="model",
                                       disable=not progress) as bar:
        for spec, run in zip(specs, runs):
            options = actor_options(spec, resources, any(n.get("GPU", 0) for n in nodes))
            if not _fits(options, nodes):
                message = _capacity_message(options, nodes)
                if not wait_for_autoscaler:
                    run.error = message
                    log.warning("%s: %s failed: %s", desc, spec.name, message)
                    bar.update()
                    continue
                log.warning("%s: %s waits for the autoscaler: %s", desc, spec.name, message)
            jobs[spec.name] = _submit(spec, run, options, loader, batches, pending)
        try:
            _drain(pending, jobs, on_done, bar, desc)
        except BaseException:   # the actors would outlive the run in a Ray session kept open
            for job in jobs.values():
                ray.kill(job.actor)
            raise
    return runs


def _submit(spec: ModelSpec, run: ModelRun, options: dict, loader: Loader | None,
            batches: list, pending: dict[Any, tuple[str, int]]) -> _Job:
    """Create the model's actor and queue its placement call and every batch on it."""
    actor = _remote_actor().options(**options).remote(spec, loader)
    pending[actor.placement.remote()] = (spec.name, PLACEMENT)
    for i, batch in enumerate(batches):
        pending[actor.score.remote(batch)] = (spec.name, i)
    return _Job(spec, actor, run, [None] * len(batches), time.perf_counter())


@functools.lru_cache(maxsize=1)
def _remote_actor():
    import ray

    return ray.remote(ModelActor)


def _drain(pending: dict[Any, tuple[str, int]], jobs: dict[str, _Job], on_done: OnDone,
           bar: Any, desc: str) -> None:
    """Collect results as they come (all ready ones per wait); finish or fail each model."""
    import ray

    while pending:
        refs = list(pending)
        if not ray.wait(refs, num_returns=1, timeout=WAIT_LOG_S)[0]:
            waiting = sorted({name for name, i in pending.values() if i == PLACEMENT})
            log.info("%s: %d model(s) waiting for resources: %s", desc, len(waiting),
                     ", ".join(waiting[:5]))
            continue
        for ref in ray.wait(refs, num_returns=len(refs), timeout=0)[0]:
            if ref in pending:  # not dropped by an earlier failure of its model
                _collect(ref, pending, jobs, on_done, bar, desc)


def _collect(ref: Any, pending: dict[Any, tuple[str, int]], jobs: dict[str, _Job],
             on_done: OnDone, bar: Any, desc: str) -> None:
    """Take one finished call's result; complete or fail its model."""
    import ray

    name, index = pending.pop(ref)
    job = jobs[name]
    try:
        value = ray.get(ref, timeout=GET_TIMEOUT_S)
    except Exception as err:  # noqa: BLE001 - any Ray or backend error fails this model
        _finish(job, pending, bar, desc, error=short_error(err))
        return
    if index == PLACEMENT:
        _placed(job.run, value, desc)
        return
    job.results[index], seconds, process = value
    job.run.score_s += seconds
    _served_by(job.run, process, desc)
    if job.complete:
        _complete(job, pending, on_done, bar, desc)


def _placed(run: ModelRun, placement: dict, desc: str) -> None:
    run.node_id, run.actor_id = placement["node_id"], placement["actor_id"]
    run.gpu_ids, run.load_s = placement["gpu_ids"], placement["load_s"]
    _served_by(run, placement["process"], desc)
    if placement["reconstructed"] and len(run.processes) == 1:
        run.restarts += 1   # its first process died before answering any call
    # DEBUG: the one INFO line per model comes when it is done (`_finish`)
    log.debug("%s: %s on node %s, actor %s, pid %s, GPUs %s (loaded in %.1f s)", desc, run.name,
              run.node_id[:12], run.actor_id[:12], placement["pid"], run.gpu_ids or "none",
              run.load_s)


def _served_by(run: ModelRun, process: str, desc: str) -> None:
    """Note the process (`<node id>/<pid>`) that answered; a new one means Ray restarted the
    actor (on that node) and retried the calls it had not answered."""
    if process in run.processes:
        return
    run.processes.append(process)
    node = process.split("/")[0]
    if node not in run.nodes:
        run.nodes.append(node)
    if len(run.processes) > 1:
        run.restarts += 1
        log.warning("%s: %s: its actor was restarted (now process %s on node %s); Ray retries "
                    "the batches it had not answered", desc, run.name, process.split("/")[1],
                    node[:12])


def _complete(job: _Job, pending: dict, on_done: OnDone, bar: Any, desc: str) -> None:
    """All batches are in: hand the results over while the actor closes its backend, then
    free the actor."""
    closing = job.actor.close.remote()
    loglikelihoods = [v for batch in job.results for v in batch]
    error = None
    try:
        on_done(job.spec, loglikelihoods)
    except OSError:   # the disk, not the model: every other model would fail the same way
        raise
    except Exception as err:  # noqa: BLE001 - a bad output fails this model only
        log.exception("%s: %s: its outputs could not be stored", desc, job.spec.name)
        error = f"{type(err).__name__}: {err}"
    _wait_for_close(closing, job.spec.name, desc)
    _finish(job, pending, bar, desc, error=error)


def _wait_for_close(closing: Any, name: str, desc: str) -> None:
    """Wait for an actor's `close` call, `CLOSE_TIMEOUT_S` at most; a failure is a warning, as
    the kill that follows ends the process all the same."""
    import ray

    try:
        ray.get(closing, timeout=CLOSE_TIMEOUT_S)
    except Exception as err:  # noqa: BLE001
        log.warning("%s: %s: its backend did not close (%s); its process is killed",
                    desc, name, short_error(err))


def _finish(job: _Job, pending: dict, bar: Any, desc: str, error: str | None = None) -> None:
    """Kill the actor, drop its outstanding calls, record the outcome."""
    import ray

    ray.kill(job.actor)
    for ref in [ref for ref, (name, _) in pending.items() if name == job.spec.name]:
        del pending[ref]
    job.run.wall_s = time.perf_counter() - job.started
    job.run.error = error
    if error:
        log.warning("%s: %s failed: %s", desc, job.spec.name, error)
    else:
        run = job.run
        log.info("%s: %s done on node %s, GPUs %s (%.1f s loading, %.1f s scoring, %.1f s since "
                 "submitted)", desc, run.name, (run.node_id or "?")[:12], run.gpu_ids or "none",
                 run.load_s or 0.0, run.score_s, run.wall_s)
    bar.update()


def short_error(err: BaseException) -> str:
    """One line for a Ray or backend error: the user's exception if there is one."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}".splitlines()[0][:500]
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"[:500]


def _fits(options: dict, nodes: list[dict]) -> bool:
    return any(node.get("CPU", 0) >= options["num_cpus"] and node.get("GPU", 0) >=
               options["num_gpus"] for node in nodes)


def _capacity_message(options: dict, nodes: list[dict]) -> str:
    biggest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
    return (f"needs {options['num_cpus']:g} CPU(s) and {options['num_gpus']:g} GPU(s) on one "
            f"node; the largest node has {biggest.get('CPU', 0):g} CPU(s) and "
            f"{biggest.get('GPU', 0):g} GPU(s). Fix: lower resources.cpus_per_model / "
            "tensor_parallel_size, or run on a cluster with bigger nodes")
