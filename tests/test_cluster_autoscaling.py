"""Ray's autoscaler on this machine, for real: GPU nodes added for model actors that wait for a
GPU and removed once idle, and a run that survives losing a node, or a model actor, while it
scores.

The three tests share one autoscaling head (`local_cluster.local_head`: own temporary directory
and ports, never `ray stop`) and run `disco-ray run` as a separate process against it. The head
runs no model (CPU 0, GPU 0); the `gpu_node` type has 1 CPU and 1 fake GPU, `min_workers: 0`,
and Ray's autoscaler v2 with the `fake_multi_node` provider starts such nodes as local
processes. Models are slow linear classifiers (tests/cluster_models.py) asking for 1 GPU each.
Outputs are compared with a clean run on a local Ray.

Part of the cluster suite, run alone in its own pytest process (.ci/run's cluster step):
`python -m pytest -q -m cluster tests/test_cluster_autoscaling.py tests/test_cluster_job_submit.py`.
`-s` prints what the autoscaler did (the timeline RESULTS.md quotes).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from local_cluster import (Head, assert_same_results, disco_ray_run, finish, local_head,
                           processes, ray_env, run_json, write_config)

pytestmark = pytest.mark.cluster

TESTS = Path(__file__).resolve().parent
GPU_NODE = {"gpu_node": {"resources": {"CPU": 1, "GPU": 1, "object_store_memory": 80_000_000},
                         "node_config": {}, "min_workers": 0, "max_workers": 2}}
IDLE_TIMEOUT_MIN = 0.1                 # the autoscaler removes a node idle for 6 s
FAST_HEALTH_CHECKS = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}


def env_with_tests(env: dict[str, str]) -> dict[str, str]:
    """`env` with tests/ importable (the classifier factory) and this venv's `ray` first."""
    return {**env, "PYTHONPATH": os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])}


def classifier_config(n_refs: int = 6, n_targets: int = 2, delay: float = 0.2,
                      trace: Path | None = None, gpus: int = 1) -> dict:
    """6 references, 2 targets (run on the anchors only), 60 samples in batches of 10."""
    def model(name: str, seed: int) -> dict:
        options = {"seed": seed, "delay": delay, **({"trace": str(trace)} if trace else {})}
        return {"name": name, "options": options}

    defaults = {"backend": "classifier", "path": "cluster_models:classifier"}
    return {"name": "cluster-test", "task": {"factory": "cluster_models:task"},
            "references": {"models": [model(f"ref{i}", i) for i in range(n_refs)],
                           "defaults": defaults},
            "targets": {"models": [model(f"target{i}", 100 + i) for i in range(n_targets)],
                        "defaults": defaults, "compute_true_score": False},
            "condense": {"k": 10, "method": "disco", "seed": 0},
            "resources": {"cpus_per_model": 1, "gpus_per_model": gpus, "batch_size": 10,
                          "max_retries": 2},
            "ray": {"num_cpus": 2}, "report": False}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    """The classifier config on a local Ray in-process, no GPUs: the reference results."""
    root = tmp_path_factory.mktemp("clean")
    config = write_config(root / "clean.yaml", classifier_config(delay=0.0, gpus=0))
    output = root / "out"
    finish(disco_ray_run(config, output, env_with_tests(ray_env())), output)
    return output


@pytest.fixture(scope="module")
def autoscaling_head():
    """A head with CPU 0 and GPU 0 and the autoscaler; `gpu_node`s start at 0."""
    with local_head(worker_types=GPU_NODE, idle_timeout_minutes=IDLE_TIMEOUT_MIN,
                    system_config=FAST_HEALTH_CHECKS,
                    extra_env={"PYTHONPATH": str(TESTS)}) as head:
        yield head


class ClusterWatch:
    """Samples the autoscaler's view (`ray.autoscaler.v2.sdk.get_cluster_status`) twice a
    second: GPU worker nodes up, launches pending, actors waiting for a GPU."""

    def __init__(self, head: Head) -> None:
        self.head, self.samples, self.started = head, [], time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ClusterWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.sample())
            except Exception:   # noqa: BLE001 - the GCS may be slow to answer under load
                pass
            self._stop.wait(0.5)

    def sample(self) -> dict:
        from ray.autoscaler.v2.sdk import get_cluster_status

        status = get_cluster_status(self.head.gcs_address)
        nodes = [n for n in status.active_nodes + status.idle_nodes
                 if n.ray_node_type_name == "gpu_node"]
        waiting = sum(r.count for demand in status.resource_demands.ray_task_actor_demand
                      for r in demand.bundles_by_count if r.bundle.get("GPU"))
        launching = sum(p.count for p in status.pending_launches) + len(status.pending_nodes)
        return {"t": round(time.monotonic() - self.started, 1), "gpu_nodes": len(nodes),
                "node_ids": sorted(n.node_id for n in nodes), "launching": launching,
                "waiting_gpu_bundles": waiting}

    def wait_for(self, condition, timeout_s: float) -> dict:
        """The first sample from now on for which `condition(sample)` holds."""
        deadline, seen = time.monotonic() + timeout_s, len(self.samples)
        while time.monotonic() < deadline:
            for sample in self.samples[seen:]:
                if condition(sample):
                    return sample
            seen = len(self.samples)
            time.sleep(0.5)
        raise AssertionError(f"not reached in {timeout_s} s; last samples: {self.samples[-5:]}")

    def timeline(self) -> list[dict]:
        """The samples where something changed."""
        keys = ("gpu_nodes", "launching", "waiting_gpu_bundles")
        changes, last = [], None
        for sample in self.samples:
            if last is None or any(sample[k] != last[k] for k in keys):
                changes.append({k: sample[k] for k in ("t", *keys)})
            last = sample
        return changes


def node_states(head: Head) -> dict[str, str]:
    """Ray's node table (state API): node id -> ALIVE / DEAD."""
    from ray.util.state import list_nodes

    return {n.node_id: n.state for n in list_nodes(address=head.dashboard_url, limit=1000)}


def no_gpu_nodes(sample: dict) -> bool:
    return sample["gpu_nodes"] == 0 and sample["launching"] == 0


def test_autoscaler_adds_gpu_nodes_for_waiting_models_and_removes_them_when_idle(
        autoscaling_head, clean_run, tmp_path):
    head = autoscaling_head
    config = write_config(tmp_path / "run.yaml", classifier_config())
    output = tmp_path / "out"
    env = env_with_tests(head.env)
    with ClusterWatch(head) as watch:
        watch.wait_for(no_gpu_nodes, 60)
        started = time.monotonic() - watch.started
        log = finish(disco_ray_run(config, output, env, head.gcs_address), output)
        done = time.monotonic() - watch.started
        idle = watch.wait_for(no_gpu_nodes, 120)
    samples = [s for s in watch.samples if s["t"] >= started]
    first_wait = next(s for s in samples if s["waiting_gpu_bundles"] > 0)
    first_node = next(s for s in samples if s["gpu_nodes"] > 0)
    assert first_wait["gpu_nodes"] == 0 and first_wait["t"] <= first_node["t"]
    assert max(s["gpu_nodes"] for s in samples) == 2          # max_workers of gpu_node
    used = {n for s in samples for n in s["node_ids"]}
    info = run_json(output)
    assert info["failed"] == {}
    ran = {name: m for name, m in info["models"].items() if not m["cached"]}
    assert sorted(ran) == [f"ref{i}" for i in range(6)] + ["target0", "target1"]
    assert {m["node_id"] for m in ran.values()} <= used        # all on autoscaled GPU nodes
    assert all(m["gpu_ids"] and m["restarts"] == 0 for m in ran.values())
    states = node_states(head)
    assert used and all(states[n] == "DEAD" for n in used)    # removed after the idle timeout
    assert_same_results(output, clean_run)
    print(f"\nautoscaling: run {started:.1f}-{done:.1f} s, first GPU demand at "
          f"{first_wait['t']} s, first GPU node at {first_node['t']} s, back to 0 GPU nodes at "
          f"{idle['t']} s; {len(used)} GPU nodes used; timeline: {watch.timeline()}")
    assert "waits for the autoscaler" in log


def wait_for_scoring(trace: Path, timeout_s: float = 180) -> dict:
    """The first actor process seen scoring (its trace file)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for marker in trace.glob("*.scoring"):
            try:
                return json.loads(marker.read_text())
            except (OSError, ValueError):   # being written or just removed
                continue
        time.sleep(0.1)
    raise AssertionError(f"no actor started scoring within {timeout_s} s")


def model_of(runs: dict, process: dict) -> tuple[str, dict]:
    """The model whose actor ran in `process` (node id and pid)."""
    key = f"{process['node_id']}/{process['pid']}"
    return next((name, m) for name, m in runs.items() if key in m.get("processes", []))


def traced_run_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(trace, config, output): a trace directory, a run config of slow classifiers (1 s each)
    that record in it where and when each model scores, and the run's output path."""
    trace = tmp_path / "trace"
    trace.mkdir()
    config = write_config(tmp_path / "run.yaml", classifier_config(delay=1.0, trace=trace))
    return trace, config, tmp_path / "out"


def test_run_survives_losing_a_node_while_its_actor_scores(autoscaling_head, clean_run,
                                                           tmp_path):
    head = autoscaling_head
    trace, config, output = traced_run_files(tmp_path)
    with ClusterWatch(head) as watch:
        watch.wait_for(no_gpu_nodes, 120)
        run = disco_ray_run(config, output, env_with_tests(head.env), head.gcs_address)
        scoring = wait_for_scoring(trace)
        programs = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
                    for pid in processes(f"--node_id={scoring['node_id']}")}
        raylets = [pid for pid, program in programs.items() if "raylet" in program]
        assert len(raylets) == 1, raylets
        os.kill(raylets[0], signal.SIGKILL)                    # the node is gone
        lost_at = time.monotonic() - watch.started
        log = finish(run, output)
        watch.wait_for(no_gpu_nodes, 120)
    info = run_json(output)
    assert info["failed"] == {}
    name, model = model_of(info["models"], scoring)
    assert model["restarts"] >= 1 and model["nodes"][0] == scoring["node_id"]
    assert len(model["nodes"]) >= 2                            # finished on another node
    assert node_states(head)[scoring["node_id"]] == "DEAD"
    others = {n: m["restarts"] for n, m in info["models"].items() if n != name}
    assert_same_results(output, clean_run)
    print(f"\nnode loss: killed the raylet of node {scoring['node_id'][-5:]} at {lost_at:.1f} s "
          f"while {name} scored; {name} restarted {model['restarts']}x on nodes "
          f"{[n[-5:] for n in model['nodes']]}; other restarts {others}; timeline: "
          f"{watch.timeline()}")
    assert f"{name}: its actor was restarted" in log


def test_run_survives_a_model_actor_killed_while_it_scores(autoscaling_head, clean_run,
                                                           tmp_path):
    head = autoscaling_head
    trace, config, output = traced_run_files(tmp_path)
    run = disco_ray_run(config, output, env_with_tests(head.env), head.gcs_address)
    scoring = wait_for_scoring(trace)
    os.kill(scoring["pid"], signal.SIGKILL)
    finish(run, output)
    info = run_json(output)
    assert info["failed"] == {}
    name, model = model_of(info["models"], scoring)
    assert model["restarts"] == 1 and len(model["processes"]) == 2
    assert all(m["restarts"] == 0 for n, m in info["models"].items() if n != name)
    assert_same_results(output, clean_run)
    print(f"\nactor kill: killed pid {scoring['pid']} while {name} scored; processes "
          f"{model['processes']}")
