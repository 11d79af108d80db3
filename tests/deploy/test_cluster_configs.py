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


def _exports(commands: list[str]) -> dict[str, str]:
    """The `export KEY=VALUE` settings the setup commands write to ~/reelforge.env, with the head's
    address (added at start) filled in as 10.0.0.5."""
    text = " ".join(commands).replace("$HEAD", "10.0.0.5").replace("$(cat ~/.reelforge-db-password)", "pw")
    found = {}
    for word in text.replace('"', " ").replace("'", " ").split():
        key, _, value = word.partition("=")
        if key.startswith(("REELFORGE_", "MLFLOW_")) and value:
            found[key] = value
    return found


def test_aws_nodes_share_state_and_declare_the_train_shape():
    """Every node sources the same settings: on a 3-node cluster nothing is refused as split state,
    and the declared train shape is gpu-train's own (its GPUs, its label)."""
    from reelforge.jobs.shared_state import refuse_split_state
    from reelforge.settings import Settings

    config = load("cluster.yaml")
    env = _exports(config["setup_commands"] + config["head_start_ray_commands"])
    settings = Settings.from_env({"REELFORGE_HOME": "/home/ubuntu/.reelforge", **env})
    refuse_split_state(settings, nodes=3, what="a fine-tune")  # raises SplitStateError naming what is local
    assert settings.database_url.startswith("postgresql+psycopg://reelforge:pw@10.0.0.5/")
    assert settings.storage_url.startswith("s3://") and settings.train_storage_url.startswith("s3://")
    train = config["available_node_types"]["gpu-train"]
    assert settings.train_node_resource in train["resources"]
    assert settings.train_node_gpus == 4 and train["node_config"]["InstanceType"] == "g5.12xlarge"  # 4x A10G
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        assert all("source ~/reelforge.env" in c for c in commands if c.startswith("ray start") or "ray start" in c)
