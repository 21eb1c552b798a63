"""Offline checks of the KubeRay manifests cluster/kuberay/raycluster.yaml and rayjob.yaml.

Nothing here touches the network or a Kubernetes cluster, and no Ray runtime is started. The
manifests are checked structurally with PyYAML, against the validation rules of the KubeRay 1.7
operator (ported below), and through Ray's own translation of a RayCluster CR into an
autoscaling config
(``ray.autoscaler._private.kuberay.autoscaling_config._derive_autoscaling_config_from_ray_cr``,
which also calls ``validate_config``). The RayJob embeds exactly the RayCluster's spec and the
job environment of cluster/runtime_env.yaml.
"""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from helpers import CLUSTER, IMAGE
from helpers import load_yaml as _load

KUBERAY = CLUSTER / "kuberay"
RAY_VERSION = "2.60.0"
ENTRYPOINT = "python -m disco_ray run configs/mmlu_vllm.yaml"

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
