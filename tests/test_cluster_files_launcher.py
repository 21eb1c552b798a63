"""Offline checks of the cluster-launcher configs cluster/aws.yaml and cluster/gcp.yaml.

Nothing here touches the network or a cloud account, and no Ray runtime is started. The configs
go through Ray's own cluster-launcher config pipeline (``ray.autoscaler._private.util.
prepare_config`` merges the provider defaults, ``validate_config`` checks ray-schema.json and
the node-type rules), and Ray's autoscaler bin-packing (``resource_demand_scheduler.
get_nodes_for``) is asked which node type it would launch for 1-, 2-, 4- and 8-GPU actors and
for CPU-only work. Structural checks: a CPU-0, on-demand head, spot GPU worker types from zero,
GCP's host-maintenance policy, the image and token authentication. The cloud bootstrap step
(``provider.bootstrap_config``) needs boto3 / the Google API client and cloud credentials, and
is not run.
"""

from __future__ import annotations

import copy
import functools
import re

import pytest

from helpers import CLUSTER, IMAGE
from helpers import load_yaml as _load

LAUNCHER_FILES = ["aws.yaml", "gcp.yaml"]
TOKEN_PATH = "$HOME/.disco_ray/auth_token"


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
        "(google-api-python-client, the `gcp` extra), not installed here",
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
