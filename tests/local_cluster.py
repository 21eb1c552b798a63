"""A Ray head (and, with an autoscaling config, Ray's autoscaler) on this machine, for tests.

`local_head` runs `ray start --head` with its own temporary directory and free ports, in a
process group of its own, and on exit ends exactly the processes it started: that group, plus
any process whose command line names its temporary directory (the worker "nodes" the
`fake_multi_node` provider starts, and their workers). It never runs `ray stop`, which would end
every Ray on the machine. `fake_cluster_config` writes the autoscaling config that
`ray.cluster_utils.AutoscalingCluster` would (autoscaler v2, the `fake_multi_node` provider:
worker nodes are local processes with the resources their node type declares, GPUs included).

`disco_ray_run` starts `disco-ray run` as a separate process (against such a head, or a local
Ray of its own), `finish` waits for it, and `assert_same_results` compares a run's model outputs
and predictions with a reference run's: the cluster suite's tests share them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

FAKE_HEAD_NODE_ID = "fffffffffffffffffffffffffffffffffffffffffffffffffff00000"
FAKE_PROVIDER = "ray.autoscaler._private.fake_multi_node.node_provider.FakeMultiNodeProvider"
HEAD_TYPE = "ray.head.default"
WORKER_PORTS = 60   # ports for the head's worker processes (job driver, supervisor, tasks)
REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 420
# a line Ray logs at level error, fatal or check-failed: "[2026-01-01 00:00:00,000 C 123 123] ..."
RAY_LOG_ERROR = re.compile(r"\[[^]]* [EFC] \d+ \d+\]")


@dataclass(frozen=True)
class Head:
    """A running head: where to reach it and the environment its clients need."""

    gcs_address: str
    dashboard_url: str
    temp_dir: Path
    env: dict[str, str]
    pgid: int


def node_ip() -> str:
    """The address Ray gives this machine's nodes (the fake nodes use it too)."""
    from ray._private.services import get_node_ip_address

    return get_node_ip_address()


def first_ephemeral_port() -> int:
    """The lowest port the kernel hands out to outgoing connections (and to `bind(("", 0))`)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768   # Linux's default


def free_port_block(size: int, lowest: int = 20000) -> range:
    """`size` consecutive ports free now, from `lowest` up and below the ephemeral range, so
    that no outgoing connection of another process takes one before the head binds it (Ray's
    own defaults for worker ports lie below 20000)."""
    highest = first_ephemeral_port() - size
    for _ in range(200 if highest > lowest else 0):
        start = random.randrange(lowest, highest)
        if all(_is_free(port) for port in range(start, start + size)):
            return range(start, start + size)
    raise RuntimeError(f"no {size} consecutive free ports found in [{lowest}, {highest + size})")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def fake_cluster_config(path: Path, gcs_address: str, head_resources: dict[str, float],
                        worker_types: dict[str, dict[str, Any]],
                        idle_timeout_minutes: float) -> Path:
    """Write an autoscaling config for the `fake_multi_node` provider, autoscaler v2."""
    node_types = {HEAD_TYPE: {"resources": head_resources, "node_config": {},
                              "max_workers": 0}, **worker_types}
    config = {
        "cluster_name": "disco-ray-test", "max_workers": sum(
            t.get("max_workers", 0) for t in worker_types.values()),
        # "external" + module: the same provider as type "fake_multinode", whose defaults file
        # (fake_multi_node/example.yaml) the Ray 2.60 wheel does not ship
        "provider": {"type": "external", "module": FAKE_PROVIDER, "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True,
                     "launch_multiple": True, "head_node_id": FAKE_HEAD_NODE_ID,
                     "gcs_address": gcs_address},
        "available_node_types": node_types, "head_node_type": HEAD_TYPE, "auth": {},
        "upscaling_speed": 1.0, "idle_timeout_minutes": idle_timeout_minutes, "docker": {},
        "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [], "file_mounts": {}, "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": []}
    path.write_text(json.dumps(config, indent=2))
    return path


def ray_env(auth_token: str | None = None, **extra: str) -> dict[str, str]:
    """This process's environment for Ray processes and clients: no inherited cluster
    address, usage stats off, token authentication on with `auth_token`, else off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token" if auth_token else "disabled")
    if auth_token:
        env["RAY_AUTH_TOKEN"] = auth_token
    env.update(extra)
    return env


@contextlib.contextmanager
def local_head(*, num_cpus: float = 0, num_gpus: float = 0,
               head_resources: dict[str, float] | None = None,
               worker_types: dict[str, dict[str, Any]] | None = None,
               idle_timeout_minutes: float = 0.1, auth_token: str | None = None,
               system_config: dict[str, Any] | None = None,
               extra_env: dict[str, str] | None = None) -> Iterator[Head]:
    """A head node started here (with the fake autoscaler when `worker_types` is given);
    every process it started is ended on exit, even when the block fails."""
    temp_dir = Path(tempfile.mkdtemp(prefix="drc", dir="/tmp"))   # short: socket paths
    ip = node_ip()
    ports = free_port_block(9 + WORKER_PORTS)
    gcs, dashboard, client, manager, objects, agent, agent_grpc, metrics, env_agent = ports[:9]
    worker_ports = ports[9:]
    gcs_address = f"{ip}:{gcs}"
    # a loaded CI machine can take over a minute to register a raylet (the default wait); the
    # head's processes keep their temporary files in temp_dir, which `stop` removes
    env = ray_env(auth_token, RAY_raylet_start_wait_time_s="300", TMPDIR=str(temp_dir),
                  **(extra_env or {}))
    command = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", f"--temp-dir={temp_dir}",
        f"--node-ip-address={ip}", f"--port={gcs}", f"--dashboard-port={dashboard}",
        "--dashboard-host=127.0.0.1", f"--ray-client-server-port={client}",
        f"--node-manager-port={manager}", f"--object-manager-port={objects}",
        f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={env_agent}",
        f"--num-cpus={num_cpus:g}", f"--num-gpus={num_gpus:g}",
        "--object-store-memory=100000000", "--disable-usage-stats"]
    command += [f"--min-worker-port={worker_ports[0]}", f"--max-worker-port={worker_ports[-1]}"]
    if head_resources:
        command.append(f"--resources={json.dumps(head_resources)}")
    if system_config:
        command.append(f"--system-config={json.dumps(system_config, separators=(',', ':'))}")
    if worker_types is not None:
        resources = {"CPU": num_cpus, "GPU": num_gpus, **(head_resources or {})}
        config = fake_cluster_config(temp_dir / "autoscaling.json", gcs_address, resources,
                                     worker_types, idle_timeout_minutes)
        command.append(f"--autoscaling-config={config}")
        env.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1",
                   RAY_enable_autoscaler_v2="1", RAY_CLOUD_INSTANCE_ID=FAKE_HEAD_NODE_ID,
                   RAY_OVERRIDE_NODE_ID_FOR_TESTING=FAKE_HEAD_NODE_ID)
    log = open(temp_dir / "ray_start.log", "w")
    starter = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    head = Head(gcs_address, f"http://127.0.0.1:{dashboard}", temp_dir,
                ray_env(auth_token, **(extra_env or {})), starter.pid)
    try:
        if starter.wait(timeout=400) != 0:
            raise RuntimeError(f"ray start failed: {(temp_dir / 'ray_start.log').read_text()}"
                               f"{head_log_errors(temp_dir)}")
        yield head
    finally:
        log.close()
        stop(head)


def head_log_errors(temp_dir: Path) -> str:
    """The error and fatal lines of the head's GCS and raylet logs (a port that could not be
    bound, a failed check at start), for the error of a head that did not start."""
    lines = []
    for name in ("gcs_server.out", "raylet.out"):
        log = temp_dir / "session_latest" / "logs" / name
        if log.is_file():
            lines += [f"{name}: {line}" for line in log.read_text(errors="replace").splitlines()
                      if RAY_LOG_ERROR.match(line)]
    return "".join(f"\n{line}" for line in lines)


def stop(head: Head, grace_s: float = 5.0) -> None:
    """End the head's process group and every process that names its temporary directory;
    remove that directory."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(head.pgid, sig)
        for pid in _pids_naming(str(head.temp_dir)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and (_group_alive(head.pgid)
                                               or _pids_naming(str(head.temp_dir))):
            time.sleep(0.2)
    if not os.environ.get("DISCO_RAY_KEEP_CLUSTER_LOGS"):
        shutil.rmtree(head.temp_dir, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _pids_naming(text: str) -> list[int]:
    """Processes (other than this one) whose command line contains `text`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if text.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def processes(pattern: str) -> list[int]:
    """Pids of processes whose command line contains `pattern` (e.g. a raylet's node id, or
    `ray::ModelActor.score`, the title of an actor process while it scores)."""
    return _pids_naming(pattern)


# -- `disco-ray run` as a separate process, and its results ---------------------------------
def write_config(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config, indent=1))   # JSON is YAML
    return path


def disco_ray_run(config: Path, output: Path, env: dict[str, str], address: str | None = None,
                  cwd: Path = REPO) -> subprocess.Popen:
    """`disco-ray run CONFIG --output OUTPUT [--address ADDRESS]`, logging to OUTPUT.log."""
    command = [str(Path(sys.executable).with_name("disco-ray")), "run", str(config),
               "--output", str(output)] + (["--address", address] if address else [])
    log = open(f"{output}.log", "w")
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen, output: Path) -> str:
    """Wait for a run; its log; fail with the log's tail if it failed."""
    try:
        code = process.wait(timeout=RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    text = Path(f"{output}.log").read_text()
    assert code == 0, f"disco-ray run exited {code}:\n{text[-4000:]}"
    return text


def outputs_of(run_dir: Path) -> dict[str, np.ndarray]:
    """Every model's stored probabilities, by model name."""
    from disco_ray.io import read_parquet

    found = {}
    for part in sorted((run_dir / "outputs").glob("*/*.parquet")):
        outputs = read_parquet(part)
        found[str(outputs.model_ids[0])] = outputs.probs[0]
    return found


def assert_same_results(run_dir: Path, clean_dir: Path) -> None:
    """Same model outputs (bit for bit) and the same predictions as the clean run's (to 1e-12:
    the driver's metamodel fit may sum in another order, e.g. with other BLAS thread counts)."""
    got, want = outputs_of(run_dir), outputs_of(clean_dir)
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    predictions = json.loads((run_dir / "predictions.json").read_text())
    expected = json.loads((clean_dir / "predictions.json").read_text())
    assert [sorted(row) for row in predictions] == [sorted(row) for row in expected]
    for row, want_row in zip(predictions, expected):
        for key, value in want_row.items():
            if isinstance(value, float):
                assert row[key] == pytest.approx(value, rel=1e-12, abs=1e-12), (key, row)
            else:
                assert row[key] == value, (key, row)


def run_json(output: Path) -> dict:
    return json.loads((output / "run.json").read_text())
