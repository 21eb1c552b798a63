"""Offline checks of the deployment files in cluster/.

Nothing here touches the network or a cloud account, and no Ray runtime is started:

* cluster/aws.yaml and cluster/gcp.yaml go through Ray's own cluster-launcher config
  pipeline (``ray.autoscaler._private.util.prepare_config`` merges the provider defaults,
  ``validate_config`` checks ray-schema.json and the node-type rules), and Ray's
  autoscaler bin-packing (``resource_demand_scheduler.get_nodes_for``) is asked which node
  type it would launch for 1-, 4- and 8-GPU actors. The cloud bootstrap step
  (``provider.bootstrap_config``) needs boto3 / the Google API client and cloud
  credentials, and is not run.
* The KubeRay manifests are checked structurally with PyYAML, against the validation rules
  of the KubeRay 1.7 operator (ported below), and through Ray's own translation of a
  RayCluster CR into an autoscaling config
  (``ray.autoscaler._private.kuberay.autoscaling_config._derive_autoscaling_config_from_ray_cr``,
  which also calls ``validate_config``).
* cluster/runtime_env.yaml is parsed the way ``ray job submit`` parses it and validated
  by ``ray.runtime_env.RuntimeEnv``; its excludes are applied by Ray's own packaging code.
* cluster/submit.sh is syntax-checked (bash -n, shellcheck when installed) and run against
  a stand-in ``ray`` executable that only prints its arguments.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
KUBERAY = CLUSTER / "kuberay"
LAUNCHER_FILES = ["aws.yaml", "gcp.yaml"]

IMAGE = "ghcr.io/your-org/disco-ray:0.1.0"
RAY_VERSION = "2.60.0"
ENTRYPOINT = "python -m disco_ray run configs/mmlu_vllm.yaml"
TOKEN_PATH = "$HOME/.disco_ray/auth_token"


def _load(path: Path):
    with open(path) as f:
        return yaml.safe_load(f)


def _launcher(name: str) -> dict:
    return _load(CLUSTER / name)


def _prepared(name: str) -> dict:
    """The config as `ray up` sees it after merging the provider's defaults.yaml."""
    util = pytest.importorskip("ray.autoscaler._private.util")
    return util.prepare_config(copy.deepcopy(_launcher(name)))


def _worker_types(cfg: dict) -> dict:
    return {k: v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]}


def _is_spot(cfg: dict, node_config: dict) -> bool:
    if cfg["provider"]["type"] == "aws":
        return node_config.get("InstanceMarketOptions", {}).get("MarketType") == "spot"
    scheduling = node_config.get("scheduling", {})
    return scheduling.get("provisioningModel") == "SPOT" or scheduling.get("preemptible") is True


# --------------------------------------------------------------------------------------
# Cluster launcher configs (AWS, GCP)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LAUNCHER_FILES)
def test_launcher_config_passes_ray_validation(name):
    util = pytest.importorskip("ray.autoscaler._private.util")
    pytest.importorskip("jsonschema")
    prepared = _prepared(name)
    util.validate_config(prepared)  # raises on any schema or node-type error
    # prepare_config must not have smuggled in the providers' default setup commands
    # (which pip-install a Ray nightly wheel).
    assert not any("ray-wheels" in cmd for cmd in prepared["setup_commands"])
    assert not any("ray-wheels" in cmd for cmd in prepared["head_setup_commands"])


def test_launcher_validation_is_not_vacuous():
    """The same validation rejects the mistakes these tests are meant to catch."""
    util = pytest.importorskip("ray.autoscaler._private.util")
    jsonschema = pytest.importorskip("jsonschema")

    no_resources = _prepared("gcp.yaml")
    del no_resources["available_node_types"]["gpu_1x_l4"]["resources"]
    with pytest.raises(jsonschema.ValidationError):
        util.validate_config(no_resources)

    typo = _prepared("aws.yaml")
    typo["available_node_types"]["gpu_1x_a10g"]["min_worker"] = 0
    with pytest.raises(jsonschema.ValidationError):
        util.validate_config(typo)

    bad_head = _prepared("aws.yaml")
    bad_head["head_node_type"] = "no_such_type"
    with pytest.raises(ValueError):
        util.validate_config(bad_head)


@pytest.mark.parametrize("name", LAUNCHER_FILES)
def test_launcher_head_runs_no_tasks_and_is_on_demand(name):
    cfg = _launcher(name)
    head = cfg["available_node_types"][cfg["head_node_type"]]
    assert head["resources"].get("CPU") == 0
    assert not head["resources"].get("GPU")
    assert head.get("max_workers", 0) == 0
    assert not _is_spot(cfg, head["node_config"]), "losing a spot head would lose the job"


@pytest.mark.parametrize("name", LAUNCHER_FILES)
def test_launcher_worker_types_autoscale_from_zero_on_spot(name):
    cfg = _launcher(name)
    workers = _worker_types(cfg)
    gpu_types = {k: v for k, v in workers.items() if v["resources"].get("GPU", 0) > 0}
    assert gpu_types, "no GPU worker type"
    for node_type, spec in workers.items():
        assert spec["min_workers"] == 0, node_type
        assert spec["max_workers"] >= 1, node_type
        assert isinstance(spec["resources"].get("CPU"), int) and spec["resources"]["CPU"] > 0
        assert _is_spot(cfg, spec["node_config"]), f"{node_type} is not spot/preemptible"
    gpu_counts = sorted(spec["resources"]["GPU"] for spec in gpu_types.values())
    assert gpu_counts[0] == 1 and gpu_counts[-1] >= 8  # single-GPU and tensor-parallel-8 nodes
    assert sum(spec["max_workers"] for spec in workers.values()) <= cfg["max_workers"]
    assert cfg["idle_timeout_minutes"] > 0


def test_gcp_gpu_types_terminate_on_host_maintenance():
    cfg = _launcher("gcp.yaml")
    for node_type, spec in _worker_types(cfg).items():
        scheduling = spec["node_config"]["scheduling"]
        assert scheduling["onHostMaintenance"] == "TERMINATE", node_type
        assert scheduling["automaticRestart"] is False, node_type
        # GCE wants an object here, not the list-of-dicts form of some old examples.
        assert isinstance(scheduling, dict)


def test_gcp_node_configs_are_compute_vms():
    """Ray's GCP provider tells TPU from compute node configs by their fields."""
    gcp_config = pytest.importorskip(
        "ray.autoscaler._private.gcp.config",
        reason="ray.autoscaler._private.gcp.config imports the Google API client "
        "(google-api-python-client / google-auth-httplib2), not installed here",
    )
    cfg = _launcher("gcp.yaml")
    for spec in cfg["available_node_types"].values():
        assert gcp_config.get_node_type(spec["node_config"]) == gcp_config.GCPNodeType.COMPUTE


@pytest.mark.parametrize("name", LAUNCHER_FILES)
def test_autoscaler_picks_a_fitting_node_type(name):
    """Ray's own bin-packing, as the autoscaler runs it for pending actors."""
    pytest.importorskip("ray.autoscaler._private.util")
    from ray.autoscaler._private.node_provider_availability_tracker import (
        NodeAvailabilitySummary,
    )
    from ray.autoscaler._private.resource_demand_scheduler import (
        _default_utilization_scorer,
        get_nodes_for,
    )

    cfg = _prepared(name)
    node_types = cfg["available_node_types"]
    scorer = functools.partial(
        _default_utilization_scorer,
        node_availability_summary=NodeAvailabilitySummary(node_availabilities={}),
    )

    def launch_for(demands):
        to_add, unfulfilled = get_nodes_for(
            node_types, {}, cfg["head_node_type"], cfg["max_workers"], demands, scorer
        )
        assert not unfulfilled, demands
        assert cfg["head_node_type"] not in to_add
        return {t: n for t, n in to_add.items() if n}

    for gpus in (1, 2, 4, 8):  # one vLLM actor with num_gpus = tensor-parallel size
        chosen = launch_for([{"CPU": 1, "GPU": gpus}])
        assert len(chosen) == 1 and all(node_types[t]["resources"]["GPU"] >= gpus for t in chosen)
    # CPU-only work (data prep, metamodel fitting) must not wake up a GPU node.
    chosen = launch_for([{"CPU": 1}] * 8)
    assert chosen and all(not node_types[t]["resources"].get("GPU") for t in chosen)


@pytest.mark.parametrize("name", LAUNCHER_FILES)
def test_launcher_uses_image_and_token_auth(name):
    cfg = _launcher(name)
    assert cfg["docker"]["image"] == IMAGE
    assert cfg["docker"]["container_name"]
    # idle GPU nodes are deleted, not stopped
    assert cfg["provider"]["cache_stopped_nodes"] is False
    # Token auth on every node: same mode and token file for head and workers.
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = " ".join(cfg[key])
        assert "RAY_AUTH_MODE=token" in start, key
        assert f"RAY_AUTH_TOKEN_PATH={TOKEN_PATH}" in start, key
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head_start
    token_dir = TOKEN_PATH.replace("$HOME", "~").rsplit("/", 1)[0]
    assert token_dir in cfg["file_mounts"]
    # Nothing is pip-installed on the nodes except the cloud SDK of the head's autoscaler.
    for cmd in cfg["setup_commands"] + cfg["worker_setup_commands"]:
        assert "pip install" not in cmd
    assert not any(re.search(r"\b(vllm|torch)\b", c) for c in cfg["head_setup_commands"])


# --------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------


def test_dockerfile():
    text = (CLUSTER / "Dockerfile").read_text()
    assert "ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-cu128" in text
    assert re.search(r"^FROM \$\{RAY_IMAGE\}$", text, re.M)
    assert "ARG VLLM_VERSION=0.29.0" in text and '"vllm==${VLLM_VERSION}"' in text
    assert re.search(r"^COPY (--chown=\S+ )?\. /app$", text, re.M)
    # the package without the hf extra, whose CPU torch pin would fight vLLM's torch
    assert '"/app"' in text and "/app[hf]" not in text
    # torch must come with vLLM (CUDA build): no CPU index, no separate torch install.
    assert "download.pytorch.org" not in text and "--index-url" not in text
    assert not re.search(r"pip install[^\n]*\btorch\b", text)
    ignore = (CLUSTER / "Dockerfile.dockerignore").read_text().split()
    for entry in (".git", "runs", "tests"):
        assert entry in ignore


# --------------------------------------------------------------------------------------
# runtime_env.yaml
# --------------------------------------------------------------------------------------


def _runtime_env() -> dict:
    """Parsed exactly as `ray job submit --working-dir . --runtime-env ...` does."""
    sdk = pytest.importorskip("ray.dashboard.modules.dashboard_sdk")
    return sdk.parse_runtime_env_args(
        runtime_env=str(CLUSTER / "runtime_env.yaml"), working_dir="."
    )


def test_runtime_env_is_valid_and_installs_nothing():
    runtime_env = pytest.importorskip("ray.runtime_env")
    env = _runtime_env()
    runtime_env.RuntimeEnv(**env)  # Ray's own field validation
    assert env["working_dir"] == "."
    for field in ("pip", "uv", "conda", "container", "image_uri", "py_modules"):
        assert field not in env, f"{field}: dependencies belong in the image"
    raw = (CLUSTER / "runtime_env.yaml").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in raw.splitlines())
    assert not re.search(r"\b(vllm|torch)\b", code, re.I)
    env_vars = env["env_vars"]
    assert env_vars["TOKENIZERS_PARALLELISM"] == "false"
    assert env_vars["HF_HUB_ENABLE_HF_TRANSFER"] == "0"
    assert all(isinstance(v, str) for v in env_vars.values())
    assert not any("TOKEN" in k and "PARALLELISM" not in k for k in env_vars), "no secrets"


def test_runtime_env_excludes_outputs_and_git(tmp_path):
    """Ray's packaging code (what uploads --working-dir) applies the excludes."""
    packaging = pytest.importorskip("ray._private.runtime_env.packaging")
    excludes = _runtime_env()["excludes"]
    repo = tmp_path / "repo"
    for rel in (
        "disco_ray/__init__.py",
        "disco_ray/cli.py",
        "configs/mmlu_vllm.yaml",
        "examples/benchmarks/tiny.csv",
        "runs/mmlu/report.html",
        "disco_runs/x/predictions.json",
        ".git/HEAD",
        "tests/test_x.py",
        "disco_ray/__pycache__/cli.cpython-311.pyc",
    ):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x")
    pkg = tmp_path / "pkg.zip"
    packaging.create_package(str(repo), pkg, include_gitignore=False, excludes=excludes)
    names = set(zipfile.ZipFile(pkg).namelist())
    assert {"disco_ray/__init__.py", "disco_ray/cli.py", "configs/mmlu_vllm.yaml",
            "examples/benchmarks/tiny.csv"} <= names
    for prefix in ("runs/", "disco_runs/", ".git/", "tests/", "disco_ray/__pycache__/"):
        assert not any(n.startswith(prefix) for n in names), prefix


# --------------------------------------------------------------------------------------
# KubeRay manifests
# --------------------------------------------------------------------------------------

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _version_tuple(v: str):
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def kuberay_spec_errors(spec: dict) -> list[str]:
    """The subset of KubeRay 1.7's ValidateRayClusterSpec (ray-operator/controllers/ray/
    utils/validation.go) that applies to these manifests, ported to Python."""
    errors = []
    head = spec["headGroupSpec"]
    containers = head["template"]["spec"].get("containers") or []
    if not containers:
        return ["headGroupSpec should have at least one container"]
    autoscaling = spec.get("enableInTreeAutoscaling") is True
    options = spec.get("autoscalerOptions") or {}
    v2 = options.get("version") == "v2"
    groups = spec.get("workerGroupSpecs") or []
    for group in [dict(head, groupName="Head")] + groups:
        name = group["groupName"]
        params = group.get("rayStartParams") or {}
        in_params = any(params.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources"))
        if in_params and group.get("resources"):
            errors.append(f"{name}: resources in both rayStartParams and Resources")
        if "labels" in params:
            errors.append(f"{name}: rayStartParams['labels'] is not supported")
        if v2 and group["template"]["spec"].get("restartPolicy", "Never") != "Never":
            errors.append(f"{name}: restartPolicy must be Never or unset with autoscaler v2")
    for group in groups:
        name = group["groupName"]
        if not group["template"]["spec"].get("containers"):
            errors.append(f"{name}: workerGroupSpec should have at least one container")
        lo, hi = group.get("minReplicas"), group.get("maxReplicas")
        if not autoscaling and (lo is None or hi is None):
            errors.append(f"{name}: minReplicas and maxReplicas required without autoscaling")
        if (lo is not None and lo < 0) or (hi is not None and hi < 0):
            errors.append(f"{name}: negative replicas")
        if lo is not None and hi is not None and lo > hi:
            errors.append(f"{name}: minReplicas > maxReplicas")
        if group.get("suspend") and autoscaling:
            errors.append(f"{name}: cannot be suspended with autoscaling")
        if group.get("idleTimeoutSeconds") is not None and not v2:
            errors.append(f"{name}: idleTimeoutSeconds needs autoscaler v2")
    head_env = {e["name"] for e in containers[0].get("env") or []}
    if "RAY_enable_autoscaler_v2" in head_env:
        if not autoscaling:
            errors.append("RAY_enable_autoscaler_v2 set without enableInTreeAutoscaling")
        elif options.get("version") is not None:
            errors.append("both autoscalerOptions.version and RAY_enable_autoscaler_v2 are set")
    if options.get("idleTimeoutSeconds", 0) < 0:
        errors.append("autoscalerOptions.idleTimeoutSeconds must be non-negative")
    if options.get("version") not in (None, "v1", "v2"):
        errors.append("autoscalerOptions.version must be v1 or v2")
    if options.get("upscalingMode") not in (None, "Default", "Aggressive", "Conservative"):
        errors.append("autoscalerOptions.upscalingMode must be Default, Aggressive or Conservative")
    auth = spec.get("authOptions") or {}
    if auth.get("mode") not in (None, "disabled", "token"):
        errors.append("authOptions.mode must be disabled or token")
    if auth.get("mode") == "token":
        if not spec.get("rayVersion"):
            errors.append("authOptions.mode is 'token' but rayVersion was not specified")
        elif _version_tuple(spec["rayVersion"]) < (2, 52, 0):
            errors.append("authOptions.mode is 'token' but minimum Ray version is 2.52.0")
    return errors


def kuberay_rayjob_errors(job: dict) -> list[str]:
    """The subset of KubeRay 1.7's ValidateRayJobSpec / ValidateRayJobMetadata used here."""
    errors = []
    name, spec = job["metadata"]["name"], job["spec"]
    if len(name) > 47 or not _DNS1035.match(name):
        errors.append("RayJob name must be a DNS-1035 label of at most 47 characters")
    if spec.get("ttlSecondsAfterFinished", 0) < 0:
        errors.append("ttlSecondsAfterFinished must be non-negative")
    if not spec.get("shutdownAfterJobFinishes") and spec.get("ttlSecondsAfterFinished", 0) > 0:
        errors.append("ttlSecondsAfterFinished needs shutdownAfterJobFinishes")
    if spec.get("rayClusterSpec") is None and not spec.get("clusterSelector"):
        errors.append("one of rayClusterSpec or clusterSelector must be set")
    if "activeDeadlineSeconds" in spec and spec["activeDeadlineSeconds"] <= 0:
        errors.append("activeDeadlineSeconds must be positive")
    try:
        yaml.safe_load(spec.get("runtimeEnvYAML") or "")
    except yaml.YAMLError as e:
        errors.append(f"runtimeEnvYAML is not valid YAML: {e}")
    if spec.get("rayClusterSpec") is not None:
        errors += kuberay_spec_errors(spec["rayClusterSpec"])
    return errors


def _raycluster() -> dict:
    return _load(KUBERAY / "raycluster.yaml")


def _rayjob() -> dict:
    return _load(KUBERAY / "rayjob.yaml")


def _volumes_by_name(pod_spec: dict) -> dict:
    return {v["name"]: v for v in pod_spec.get("volumes") or []}


def _check_cluster_spec(spec: dict):
    assert spec["rayVersion"] == RAY_VERSION
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["version"] == "v2"
    assert spec["authOptions"]["mode"] == "token"
    assert kuberay_spec_errors(spec) == []

    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    head_container = head["template"]["spec"]["containers"][0]
    assert head_container["image"] == IMAGE
    assert not any(r.get("nvidia.com/gpu") for r in head_container["resources"].values())

    gpu_groups = [
        g for g in spec["workerGroupSpecs"]
        if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"].get("limits", {})
    ]
    assert gpu_groups, "no GPU worker group"
    for group in spec["workerGroupSpecs"]:
        assert _DNS1123.match(group["groupName"])
        assert group["minReplicas"] == 0 and group.get("replicas", 0) == 0
        assert group["maxReplicas"] >= 1
        assert group["template"]["spec"]["containers"][0]["image"] == IMAGE
    for group in gpu_groups:
        pod = group["template"]["spec"]
        container = pod["containers"][0]
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        assert int(limits["nvidia.com/gpu"]) >= 1
        # extended resources: requests equal limits
        assert requests.get("nvidia.com/gpu") == limits["nvidia.com/gpu"]
        assert any(
            t.get("key") == "nvidia.com/gpu" and t.get("operator") == "Exists"
            for t in pod.get("tolerations") or []
        )
        # /dev/shm backed by a memory emptyDir
        volumes = _volumes_by_name(pod)
        shm = [m for m in container.get("volumeMounts") or [] if m["mountPath"] == "/dev/shm"]
        assert len(shm) == 1
        assert volumes[shm[0]["name"]]["emptyDir"]["medium"] == "Memory"
    one_gpu = [g for g in gpu_groups if int(
        g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) == 1]
    assert one_gpu and one_gpu[0]["maxReplicas"] == 8


def test_raycluster_manifest():
    doc = _raycluster()
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster"
    name = doc["metadata"]["name"]
    assert len(name) <= 53 and _DNS1035.match(name)
    _check_cluster_spec(doc["spec"])


def test_rayjob_manifest():
    doc = _rayjob()
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayJob"
    spec = doc["spec"]
    assert spec["entrypoint"] == ENTRYPOINT
    assert spec["shutdownAfterJobFinishes"] is True
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] > 0
    assert spec.get("submissionMode", "K8sJobMode") == "K8sJobMode"
    assert kuberay_rayjob_errors(doc) == []
    _check_cluster_spec(spec["rayClusterSpec"])
    # One cluster definition: the RayJob embeds exactly the RayCluster spec.
    assert spec["rayClusterSpec"] == _raycluster()["spec"]
    # Same job environment as `ray job submit --runtime-env cluster/runtime_env.yaml`.
    job_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert set(job_env) == {"env_vars"}
    assert job_env["env_vars"] == _load(CLUSTER / "runtime_env.yaml")["env_vars"]


def test_kuberay_rules_reject_broken_specs():
    spec = _raycluster()["spec"]

    bad = copy.deepcopy(spec)
    bad["rayVersion"] = "2.51.0"
    assert any("2.52.0" in e for e in kuberay_spec_errors(bad))

    bad = copy.deepcopy(spec)
    bad["headGroupSpec"]["template"]["spec"]["containers"][0].setdefault("env", []).append(
        {"name": "RAY_enable_autoscaler_v2", "value": "1"}
    )
    assert kuberay_spec_errors(bad)

    bad = copy.deepcopy(spec)
    bad["workerGroupSpecs"][0]["template"]["spec"]["restartPolicy"] = "Always"
    assert kuberay_spec_errors(bad)

    bad = copy.deepcopy(spec)
    bad["workerGroupSpecs"][0]["minReplicas"] = 9
    assert kuberay_spec_errors(bad)

    job = _rayjob()
    job["spec"]["shutdownAfterJobFinishes"] = False
    assert kuberay_rayjob_errors(job)


@pytest.mark.parametrize("which", ["raycluster", "rayjob"])
def test_ray_translates_kuberay_spec_to_valid_autoscaling_config(which):
    """Ray's autoscaler reads the RayCluster CR through this function (and validates the
    result with validate_config); feed it the manifests offline."""
    autoscaling_config = pytest.importorskip("ray.autoscaler._private.kuberay.autoscaling_config")
    if which == "raycluster":
        cr = _raycluster()
    else:
        job = _rayjob()
        cr = {"metadata": {"name": job["metadata"]["name"] + "-abcde"},
              "spec": job["spec"]["rayClusterSpec"]}
    cr = copy.deepcopy(cr)
    cr["metadata"].setdefault("namespace", "default")
    config = autoscaling_config._derive_autoscaling_config_from_ray_cr(cr)
    node_types = config["available_node_types"]
    head = node_types.pop(config["head_node_type"])
    assert head["resources"]["CPU"] == 0 and not head["resources"].get("GPU")
    gpu_types = {k: v for k, v in node_types.items() if v["resources"].get("GPU")}
    assert gpu_types
    assert all(v["min_workers"] == 0 for v in node_types.values())
    assert sorted(v["resources"]["GPU"] for v in gpu_types.values())[0] == 1
    assert config["idle_timeout_minutes"] > 0


# --------------------------------------------------------------------------------------
# submit.sh
# --------------------------------------------------------------------------------------

SUBMIT = CLUSTER / "submit.sh"


def test_submit_script_syntax():
    assert os.access(SUBMIT, os.X_OK), "cluster/submit.sh is not executable"
    text = SUBMIT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(SUBMIT)], check=True, timeout=10)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_submit_script_shellcheck():
    result = subprocess.run(["shellcheck", str(SUBMIT)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def _run_submit(tmp_path, *args, env_extra=None):
    """Run submit.sh with a stand-in `ray` that prints its arguments and auth env."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake_ray = bin_dir / "ray"
    fake_ray.write_text(
        "#!/usr/bin/env bash\n"
        'printf "ARGV"; printf " %s" "$@"; printf "\\n"\n'
        'echo "AUTH_MODE=${RAY_AUTH_MODE:-} TOKEN_PATH=${RAY_AUTH_TOKEN_PATH:-} CWD=$PWD"\n'
    )
    fake_ray.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home)}
    env.update(env_extra or {})
    return subprocess.run(
        ["bash", str(SUBMIT), *args], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=30
    )


def test_submit_script_builds_the_job_submit_command(tmp_path):
    # Any file under the repository root stands in for the config (configs/ may not exist).
    config = "cluster/runtime_env.yaml"
    result = _run_submit(
        tmp_path, "--address", "http://head:8265", "--no-wait", "--submission-id", "job1",
        config, "--", "--output", "/home/ray/disco_runs/x",
    )
    assert result.returncode == 0, result.stderr
    argv = next(line for line in result.stdout.splitlines() if line.startswith("ARGV")).split()[1:]
    assert argv[:2] == ["job", "submit"]
    sep = argv.index("--")
    options, entrypoint = argv[2:sep], argv[sep + 1:]
    assert options[options.index("--address") + 1] == "http://head:8265"
    assert options[options.index("--working-dir") + 1] == "."
    assert options[options.index("--runtime-env") + 1] == "cluster/runtime_env.yaml"
    assert options[options.index("--submission-id") + 1] == "job1"
    assert "--no-wait" in options
    assert entrypoint == ["python", "-m", "disco_ray", "run", config,
                          "--output", "/home/ray/disco_runs/x"]
    assert f"CWD={ROOT}" in result.stdout  # --working-dir . is the repository root
    assert "AUTH_MODE= " in result.stdout  # no token anywhere: auth left alone
    assert "ray job logs -f" in result.stderr


def test_submit_script_token_auth_and_defaults(tmp_path):
    token_dir = tmp_path / "home" / ".disco_ray"
    token_dir.mkdir(parents=True)
    (token_dir / "auth_token").write_text("0" * 64)
    result = _run_submit(tmp_path, "cluster/runtime_env.yaml", env_extra={"RAY_ADDRESS": "http://x:8265"})
    assert result.returncode == 0, result.stderr
    assert f"AUTH_MODE=token TOKEN_PATH={token_dir / 'auth_token'}" in result.stdout
    argv = next(line for line in result.stdout.splitlines() if line.startswith("ARGV")).split()
    assert argv[argv.index("--address") + 1] == "http://x:8265"
    assert "--no-wait" not in argv


def test_submit_script_usage_errors(tmp_path):
    assert _run_submit(tmp_path).returncode == 2
    assert _run_submit(tmp_path, "--help").returncode == 0
    assert _run_submit(tmp_path, "no/such/config.yaml").returncode == 2
    assert _run_submit(tmp_path, "--bogus", "cluster/runtime_env.yaml").returncode == 2


# --------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------


def test_cluster_readme_states_how_it_was_validated():
    text = (CLUSTER / "README.md").read_text().lower()
    assert "validated offline" in text
    assert "never launched" in text
    for needle in ("ray up cluster/aws.yaml", "kubectl apply", "cluster/submit.sh", "ray status",
                   "ray down"):
        assert needle in text
