"""The shipped Ray cluster launcher configs pass Ray's own validation (defaults filled in as
`ray up` does) and keep Ray's ports off the internet."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {"cluster.yaml": REPO / "cluster.yaml", "cluster-local.yaml": REPO / "deploy" / "cluster-local.yaml"}


def load(name: str) -> dict:
    return yaml.safe_load(CONFIGS[name].read_text())


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-local.yaml"])
def test_launcher_configs_validate_and_bind_safely(name):
    config = load(name)
    validate_config(prepare_config(copy.deepcopy(config)))
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "--port=6380" in head  # 6379 is Redis's on our machines
    assert all("constraints.txt" in c for c in config["setup_commands"] if "pip install" in c and "reelforge" in c)


def test_aws_config_has_train_and_serve_gpu_types_and_no_open_ports():
    config = load("cluster.yaml")
    types = config["available_node_types"]
    assert set(types) == {"head", "gpu-train", "gpu-serve"} and config["head_node_type"] == "head"
    assert (
        types["gpu-serve"]["min_workers"] >= 1 and types["gpu-serve"]["max_workers"] > types["gpu-serve"]["min_workers"]
    )
    ranges = [r["CidrIp"] for p in config["provider"]["security_group"]["IpPermissions"] for r in p["IpRanges"]]
    assert "0.0.0.0/0" not in ranges


def test_validation_really_rejects_a_broken_config():
    config = load("cluster.yaml")
    config["available_node_types"]["gpu-train"]["max_wrokers"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(config))
