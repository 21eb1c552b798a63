"""`ray job submit` with token authentication, for real: cluster/submit.sh sends a config that
replays stored outputs to a Ray head started here with a token (`local_cluster.local_head`), the
job's results match a local run's, and a client with the wrong token is refused.

Part of the cluster suite, run alone in its own pytest process (.ci/run's cluster step):
`python -m pytest -q -m cluster tests/test_cluster_autoscaling.py tests/test_cluster_job_submit.py`.
`-s` prints how long the local run, the head's start and the job took.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from local_cluster import (REPO, Head, assert_same_results, disco_ray_run, finish, local_head,
                           ray_env, run_json, write_config)

pytestmark = pytest.mark.cluster


def replay_job(repo: Path) -> Path:
    """A config in `repo` (a copy of this repository) replaying stored outputs of 6 references
    and 2 targets on the shipped smoke task; returns its path relative to `repo`."""
    from disco_ray.io import write_outputs
    from disco_ray.outputs import ModelOutputs
    from disco_ray.tasks import load_task

    task = load_task(str(REPO / "configs" / "data" / "smoke_task.jsonl"))
    names = [f"ref{i}" for i in range(6)] + ["target0", "target1"]
    rng = np.random.default_rng(3)
    probs = np.zeros((len(names), len(task.samples), 4))
    for j, sample in enumerate(task.samples):
        logits = rng.normal(size=(len(names), sample.n_options))
        logits[:, sample.gold] += np.linspace(0, 3, len(names))
        probs[:, j, :sample.n_options] = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    outputs = ModelOutputs.from_probs(names, task.sample_ids, probs,
                                      np.array([s.gold for s in task.samples]))
    (repo / "job").mkdir()
    write_outputs(outputs, repo / "job" / "replay.parquet")
    defaults = {"backend": "replay", "path": "job/replay.parquet"}
    config = {"name": "job-test", "task": {"path": "configs/data/smoke_task.jsonl"},
              "references": {"models": [{"name": n, "options": {"model_id": n}}
                                        for n in names[:6]], "defaults": defaults},
              "targets": {"models": [{"name": n, "options": {"model_id": n}}
                                     for n in names[6:]], "defaults": defaults},
              "condense": {"k": 20, "method": "disco", "seed": 0},
              "resources": {"cpus_per_model": 0.5, "gpus_per_model": 0, "batch_size": 25,
                            "max_retries": 1},
              "ray": {"num_cpus": 2}, "report": False}
    write_config(repo / "job" / "job.yaml", config)
    return Path("job") / "job.yaml"


def job_info(head: Head, submission_id: str, env: dict[str, str]) -> dict:
    """Status, entrypoint and env vars of a job, from `JobSubmissionClient` in a process with
    the client environment `env` (Ray reads its authentication mode once per process)."""
    script = ("import json, sys; from ray.job_submission import JobSubmissionClient; "
              "info = JobSubmissionClient(sys.argv[1]).get_job_info(sys.argv[2]); "
              "print(json.dumps({'status': str(info.status.value), 'entrypoint': info.entrypoint,"
              " 'env_vars': (info.runtime_env or {}).get('env_vars', {})}))")
    result = subprocess.run([sys.executable, "-c", script, head.dashboard_url, submission_id],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def copy_repository(target: Path) -> Path:
    shutil.copytree(REPO, target, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "__pycache__", "*.egg-info", ".pytest_cache"))
    return target


def test_ray_job_submit_with_token_authentication_matches_a_local_run(tmp_path):
    repo = copy_repository(tmp_path / "repo")
    config = replay_job(repo)
    local = tmp_path / "local"
    began = time.monotonic()
    finish(disco_ray_run(config, local, ray_env(), cwd=repo), local)
    local_s, token = time.monotonic() - began, secrets.token_hex(32)
    with local_head(num_cpus=2, auth_token=token) as head:
        head_s = time.monotonic() - began - local_s
        submitted = tmp_path / "job_out"
        env = {**head.env, "HOME": str(tmp_path)}   # the token comes from RAY_AUTH_TOKEN only
        result = subprocess.run(
            [str(repo / "cluster" / "submit.sh"), "--address", head.dashboard_url,
             "--submission-id", "disco-job-test", str(config), "--", "--output",
             str(submitted)], env=env, cwd=repo, capture_output=True, text=True, timeout=300)
        job_s = time.monotonic() - began - local_s - head_s
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        job = job_info(head, "disco-job-test", env)
        assert job["status"] == "SUCCEEDED", job
        assert job["env_vars"]["PYTHONUNBUFFERED"] == "1"   # from cluster/runtime_env.yaml
        wrong = {**env, "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        refused = subprocess.run([str(Path(sys.executable).with_name("ray")), "job", "list",
                                  "--address", head.dashboard_url], env=wrong,
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0
    info = run_json(submitted)
    assert info["failed"] == {} and all(not m["cached"] for m in info["models"].values())
    assert_same_results(submitted, local)
    print(f"\njob submit: local run {local_s:.1f} s, head start {head_s:.1f} s, submit.sh until "
          f"the job ended {job_s:.1f} s; job {job['status']}, entrypoint {job['entrypoint']!r}")
