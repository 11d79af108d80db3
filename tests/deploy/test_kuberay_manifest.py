"""The KubeRay manifest (deploy/kuberay/rayservice.yaml) holds together: its Serve application is a
valid reelforge config, every pod shares state instead of keeping it, the declared train shape is
the train group's own, and Ray's ports are closed to the outside.

The RayService CRD's own OpenAPI schema is not on any package registry this project installs from,
so the shape is checked against the fields KubeRay's v1 API defines that this manifest uses
(`RAYSERVICE_SCHEMA`), not against the full CRD; `kubectl apply --dry-run=server` on a cluster with
KubeRay installed does the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from reelforge.jobs.shared_state import refuse_split_state
from reelforge.platform.config import parse_serve_config
from reelforge.settings import Settings

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kuberay" / "rayservice.yaml"

_CONTAINER = {
    "type": "object",
    "required": ["name", "image"],
    "properties": {
        "env": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        "envFrom": {"type": "array"},
        "resources": {"type": "object", "properties": {"limits": {"type": "object"}}},
    },
}
_POD = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "spec": {
            "type": "object",
            "required": ["containers"],
            "properties": {"containers": {"type": "array", "minItems": 1, "items": _CONTAINER}},
        }
    },
}
_START_PARAMS = {"type": "object", "additionalProperties": {"type": "string"}}  # KubeRay takes strings only
RAYSERVICE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayService"},
        "spec": {
            "type": "object",
            "required": ["serveConfigV2", "rayClusterConfig"],
            "properties": {
                "serveConfigV2": {"type": "string"},
                "rayClusterConfig": {
                    "type": "object",
                    "required": ["headGroupSpec"],
                    "properties": {
                        "rayVersion": {"type": "string"},
                        "enableInTreeAutoscaling": {"type": "boolean"},
                        "headGroupSpec": {
                            "type": "object",
                            "required": ["rayStartParams", "template"],
                            "properties": {"rayStartParams": _START_PARAMS, "template": _POD},
                        },
                        "workerGroupSpecs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["groupName", "rayStartParams", "template", "minReplicas", "maxReplicas"],
                                "properties": {
                                    "groupName": {"type": "string"},
                                    "replicas": {"type": "integer", "minimum": 0},
                                    "minReplicas": {"type": "integer", "minimum": 0},
                                    "maxReplicas": {"type": "integer", "minimum": 1},
                                    "rayStartParams": _START_PARAMS,
                                    "template": _POD,
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def documents() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


def _custom_resources(group: dict) -> dict[str, float]:
    """A group's `resources` start parameter, written as KubeRay's docs do: a quoted JSON string."""
    return json.loads(json.loads(group["rayStartParams"]["resources"]))


def _groups(service: dict) -> dict[str, dict]:
    cluster = service["spec"]["rayClusterConfig"]
    return {"head": cluster["headGroupSpec"]} | {g["groupName"]: g for g in cluster["workerGroupSpecs"]}


def test_the_rayservice_has_kuberays_shape_and_a_valid_reelforge_application(documents):
    service = documents["RayService"]
    jsonschema.validate(service, RAYSERVICE_SCHEMA)
    serve = yaml.safe_load(service["spec"]["serveConfigV2"])
    (app,) = serve["applications"]
    assert app["import_path"] == "reelforge.platform.serving.app_builder:build_app"
    config = parse_serve_config(app["args"])  # the same validation `serve deploy` gets from build_app
    serve_labels = {k for g in config.generators for k in g.resources}
    assert serve_labels == {"serve-node"} and "serve-node" in _custom_resources(_groups(service)["gpu-serve"])


def test_every_pod_shares_state_and_the_train_shape_is_the_train_groups(documents):
    settings_map = documents["ConfigMap"]["data"]
    for name, group in _groups(documents["RayService"]).items():
        (container,) = group["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": "reelforge-settings"}}], name
        secrets = {e["name"] for e in container["env"]}
        assert {"REELFORGE_DATABASE_URL", "MLFLOW_TRACKING_URI"} <= secrets, name
    placeholders = {
        "REELFORGE_DATABASE_URL": "postgresql+psycopg://u:p@db/reelforge",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    }
    settings = Settings.from_env(settings_map | placeholders)
    refuse_split_state(settings, nodes=3, what="the KubeRay cluster")  # SplitStateError if any state is a pod's own
    train = _groups(documents["RayService"])["gpu-train"]
    assert settings.train_node_resource in _custom_resources(train)
    limits = train["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert settings.train_node_gpus == int(limits["nvidia.com/gpu"]) and train["minReplicas"] == 0


def test_rays_ports_are_closed_but_to_the_cluster_and_the_operator(documents):
    policy = documents["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/created-by": "kuberay-operator"}
    open_to_all = [rule for rule in policy["ingress"] if "from" not in rule]
    assert [p["port"] for rule in open_to_all for p in rule["ports"]] == [8000]  # the API only
    assert documents["RayService"]["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
